"""The stages of ``benchmarks.speed``, each run in its own process so that its peak RSS is its own.

``python -m benchmarks.speed_stages STAGE OUT.json [ARGS...]`` writes the stage's
result as JSON, with ``rss_mb`` (the process's peak resident memory, from
/proc/self/status VmHWM) and ``load`` (the 1-minute load average at the end).

>>> peak_rss_mb() > 0
True
"""

from __future__ import annotations

import json
import os
import sys
import time

STARTED = time.perf_counter()  # before the heavy imports: app start-up counts them

import numpy as np  # noqa: E402

SCIFACT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "scifact")
TINY_GGUF = os.path.join(os.path.dirname(SCIFACT), "..", "models", "stories260K.gguf")


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ingest_part(kind: str, index: str, workdir: str, n: int, part: int, parts: int, ndcg_limit: int,
                backend: str = "auto") -> dict:
    """Ingest one part of the corpus; after the last part, the index's nDCG (``ndcg_limit`` claims, 0: all)."""
    from benchmarks.speed_ingest import dense_ndcg, run_naive, run_ours, select_corpus
    from models.embedder import EmbedderConfig

    rows = select_corpus(SCIFACT, n)
    rows = rows[part * len(rows) // parts:(part + 1) * len(rows) // parts]
    run = run_naive(rows, index) if kind == "naive" else run_ours(rows, index, workdir, EmbedderConfig(backend=backend))
    result = {"papers": run.papers, "seconds": run.seconds, "chunks": run.chunks, "load_during": os.getloadavg()[0]}
    if part == parts - 1:
        config = EmbedderConfig(backend="torch" if kind == "naive" else backend)
        result["ndcg"] = dense_ndcg(index, SCIFACT, config, limit=ndcg_limit or None)
    return result


def build(index: str, papers: int, abstracts: int) -> dict:
    """Grow the synthetic index to ``papers`` and build its keyword index once."""
    from benchmarks.speed_synth import CACHE, grow_index, sentence_pool
    from chat.retrieve import Retriever
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    embedder = Embedder()
    store = Store.open(StoreConfig(path=index), embedder.name, embedder.dim)
    pool = sentence_pool(SCIFACT, embedder, abstracts)
    written = grow_index(store, pool, papers, made={"abstracts": abstracts, "cache": CACHE})
    started = time.perf_counter()
    Retriever(store, embedder)
    return {"write_s": written.write_s, "keyword_s": time.perf_counter() - started, "disk_mb": _disk_mb(index),
            "papers": store.stats().papers, "chunks": written.chunks}


def app(index: str, queries: int) -> dict:
    """Start as the app does (store, embedder, retriever), then time hybrid searches."""
    from benchmarks.beir import load_beir
    from chat.retrieve import Retriever
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    embedder = Embedder()
    store = Store.open(StoreConfig(path=index), embedder.name, embedder.dim)
    retriever = Retriever(store, embedder)
    ready = time.perf_counter() - STARTED
    claims = list(load_beir(SCIFACT, "train").queries.values())[:queries + 3]
    for claim in claims[:3]:
        retriever.search(claim, k=5)  # warm caches, as a running app is
    times = []
    for claim in claims[3:]:
        started = time.perf_counter()
        retriever.search(claim, k=5, mode="hybrid")
        times.append((time.perf_counter() - started) * 1000)
    return {"start_s": ready, "keyword_rebuilt": bool(retriever.keyword.built), "papers": store.stats().papers,
            "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))}


def answers(index: str, questions: int) -> dict:
    """Prompt tokens and time to first token on the llama.cpp path (stories260K: plumbing, not quality)."""
    from benchmarks.beir import load_beir
    from benchmarks.speed_ingest import answerable
    from chat.setup import open_answerer
    from ingest.store import StoreConfig

    from chat.abstain import AbstainConfig
    from chat.answer import AnswerConfig

    # abstention off: this stage measures the prompt and the first token, on whatever the claims retrieve
    answerer = open_answerer(StoreConfig(path=index), model_spec=os.path.abspath(TINY_GGUF), require_model=True,
                             answer_config=AnswerConfig(abstain=AbstainConfig(enabled=False)))
    data = load_beir(SCIFACT, "train")
    indexed = {p.paper_id for p in answerer.retriever.store.iter_papers()}
    claims = [data.queries[q] for q in answerable(data.qrels, indexed)][:4 * questions]
    tokens, saved, ttft = [], [], []
    for claim in claims:
        if len(tokens) == questions:
            break
        answer = answerer.ask(claim)
        # the model ran (a prompt, a first token), even where the checker then fell back to an extractive answer
        if answer.prompt_tokens and "first_token" in answer.timings:
            tokens.append(answer.prompt_tokens)
            saved.append(getattr(answer, "prompt_tokens_saved", 0))
            ttft.append(answer.timings.get("first_token", answer.timings["total"]))
    return {"answered": len(tokens), "prompt_tokens": float(np.mean(tokens)) if tokens else 0.0,
            "prompt_tokens_saved": float(np.mean(saved)) if saved else 0.0,
            "ttft_s": float(np.median(ttft)) if ttft else 0.0}


def _disk_mb(path: str) -> float:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20


def _scale(name: str):
    from benchmarks import speed_scale

    return getattr(speed_scale, name)


STAGES = {"ingest": lambda a: ingest_part(a[0], a[1], a[2], *map(int, a[3:7]), *a[7:]),
          "build": lambda a: build(a[0], int(a[1]), int(a[2])),
          "app": lambda a: app(a[0], int(a[1])), "answers": lambda a: answers(a[0], int(a[1])),
          "scale_app": lambda a: _scale("scale_app")(a[0], int(a[1]), int(a[2])),
          "scale_recall": lambda a: _scale("scale_recall")(a[0], int(a[1])),
          "scale_server": lambda a: _scale("scale_server")(a[0], int(a[1]), int(a[2]), int(a[3]))}


def volunteer_for_oom() -> None:
    """Be the first process the kernel ends when memory runs out (a million-paper stage holds ~14 GB):
    on a shared machine, the benchmark is the one to lose, not someone's editor or tests."""
    try:
        with open("/proc/self/oom_score_adj", "w", encoding="ascii") as fh:
            fh.write("1000")
    except OSError:
        pass  # not Linux, or not allowed: nothing to do


def main(argv: list[str]) -> int:
    volunteer_for_oom()
    stage, out, args = argv[0], argv[1], argv[2:]
    result = STAGES[stage](args)
    result.update(rss_mb=peak_rss_mb(), load=os.getloadavg()[0])
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
