"""Retrieval quality of the chat pipeline on a BEIR-layout dataset, per mode, side by side.

The corpus goes through the project's own ingest into an index cached per corpus
and embedding model (``benchmarks/.cache/`` unless ``--index-cache`` says otherwise),
so only the first run pays for embedding. Each query is ranked by
``Retriever.rank`` to depth 100; queries/s covers embedding the query and ranking.

    python -m benchmarks.retrieval --beir ../shared/data/scifact --split train --mode all

>>> report = RetrievalReport("scifact", "train", 2, {"bm25": ModeResult(Metrics(0.5, 0.5, 1.0, 0.5, 2), 99.0)})
>>> sorted(report.to_json()["modes"]["bm25"])
['mrr@10', 'ndcg@10', 'qps', 'recall@10', 'recall@100']
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from benchmarks.beir import BeirDataset, Metrics, evaluate, iter_corpus, load_beir
from chat.keyword import KeywordConfig
from chat.retrieve import MODES, RetrievalConfig, Retriever
from models.errors import PaperChatError

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
DEPTH = 100
# What retrieval was before tuning (issue 5): the "before" column of benchmarks/RESULTS.md.
BASELINE = RetrievalConfig(fusion="rrf", rrf_k=60.0, dense_weight=0.5,
                           keyword=KeywordConfig(k1=0.9, b=0.4, title_weight=1.0, stem=False, stop_words=False))


@dataclass(frozen=True)
class ModeResult:
    metrics: Metrics
    qps: float


@dataclass(frozen=True)
class RetrievalReport:
    dataset: str
    split: str
    queries: int
    modes: dict[str, ModeResult]

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "split": self.split, "queries": self.queries,
                "modes": {mode: {"ndcg@10": r.metrics.ndcg10, "recall@10": r.metrics.recall10,
                                 "recall@100": r.metrics.recall100, "mrr@10": r.metrics.mrr10, "qps": r.qps}
                          for mode, r in self.modes.items()}}

    def table(self) -> str:
        rows = [f"{self.dataset} ({self.split}, {self.queries} queries)",
                f"{'mode':<8} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7} {'q/s':>7}"]
        for mode, r in self.modes.items():
            m = r.metrics
            rows.append(f"{mode:<8} {m.ndcg10:>8.4f} {m.recall10:>7.4f} {m.recall100:>7.4f} {m.mrr10:>7.4f} "
                        f"{r.qps:>7.1f}")
        return "\n".join(rows)


def cache_dir(dataset: BeirDataset, model: str, root: str | os.PathLike = DEFAULT_CACHE) -> str:
    """One directory per corpus content and embedding model."""
    digest = hashlib.sha1()
    with open(dataset.corpus_path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    slug = model.replace("/", "_")
    return os.path.join(str(root), f"{dataset.name}-{digest.hexdigest()[:12]}-{slug}")


def cached_index(sources: Sequence[str], embedder, directory: str, progress=None):
    """A store in ``directory`` holding ``sources``, ingested once and reused.

    The cache records the chunker settings it was built with; when they changed, the
    index is emptied and rebuilt, since its chunks would not be what ingest makes now.
    """
    from ingest.pipeline import IngestOptions, ingest
    from ingest.store import Store, StoreConfig

    options = IngestOptions()
    chunker = options.chunker.fingerprint(embedder.max_tokens)
    marker = os.path.join(directory, "complete.json")
    done = _read_json(marker)
    if done is not None and done.get("chunker") != chunker:
        shutil.rmtree(directory)
        done = None
    store = Store.open(StoreConfig(path=os.path.join(directory, "index")), embedder.name, embedder.dim)
    if done is None:  # an interrupted run resumes: ingest skips what is already stored
        report = ingest(list(sources), store, embedder, options, progress=progress)
        with open(marker, "w", encoding="utf-8") as fh:
            json.dump({"papers": report.papers_in_index, "chunks": report.chunks_in_index,
                       "seconds": report.seconds, "chunker": chunker}, fh)
    return store


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def corpus_to_paper_ids(dataset: BeirDataset, store) -> dict[str, str]:
    """BEIR corpus id -> the paper id the index gives it (ids that look like arXiv ids are normalised;
    a document merged into another with the same abstract maps to the one kept)."""
    from ingest.records import make_paper

    mapping, fingerprints = {}, {}
    for row in iter_corpus(dataset.directory):
        try:
            paper = make_paper(raw_id=str(row["_id"]), abstract=row.get("text") or "")
        except ValueError:
            continue  # no abstract: never indexed, its judgements stay unreachable
        mapping[str(row["_id"])], fingerprints[str(row["_id"])] = paper.paper_id, paper.fingerprint
    present = store.get_papers(list(set(mapping.values())))
    orphans = {doc_id: fingerprints[doc_id] for doc_id, pid in mapping.items() if pid not in present}
    found = store.find_by_fingerprint(list(orphans.values())) if orphans else {}
    for doc_id, fp in orphans.items():
        if fp in found:
            mapping[doc_id] = found[fp].paper_id
    return mapping


def run(dataset: BeirDataset, retriever: Retriever, modes: Sequence[str], id_map: dict[str, str]) -> RetrievalReport:
    """Rank every query in every mode and score the rankings against the qrels."""
    qrels = {q: _mapped(judged, id_map) for q, judged in dataset.qrels.items()}
    results = {}
    for mode in modes:
        runs, start = {}, time.perf_counter()
        for qid, text in dataset.queries.items():
            runs[qid] = [r.paper_id for r in retriever.rank(text, DEPTH, mode=mode)]
        elapsed = time.perf_counter() - start
        results[mode] = ModeResult(evaluate(runs, qrels), len(runs) / elapsed if elapsed else 0.0)
    return RetrievalReport(dataset.name, dataset.split, len(dataset.queries), results)


def _mapped(judged: dict[str, int], id_map: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for doc_id, grade in judged.items():
        pid = id_map.get(doc_id, doc_id)
        out[pid] = max(out.get(pid, grade), grade)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrieval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--beir", required=True, help="BEIR directory: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv")
    parser.add_argument("--split", default="test", help="qrels split (default: test)")
    parser.add_argument("--mode", default="all", choices=[*MODES, "all"])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--index-cache", default=str(DEFAULT_CACHE), help="where cached indexes live")
    parser.add_argument("--baseline", action="store_true",
                        help="untuned settings: RRF k=60, BM25 k1=0.9 b=0.4, no stemming, stop words or title weight")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a RetrievalConfig field, e.g. --set dense_weight=0.6 --set keyword.k1=1.2")
    args = parser.parse_args(argv)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "tiktoken"))
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    try:
        report = _run_cli(args)
    except (ValueError, PaperChatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json()) if args.json else report.table())
    return 0


def _run_cli(args) -> RetrievalReport:
    from models.embedder import Embedder, EmbedderConfig

    config = configure(BASELINE if args.baseline else RetrievalConfig(), args.set)
    dataset = load_beir(args.beir, args.split)
    embedder = Embedder(EmbedderConfig())
    directory = cache_dir(dataset, embedder.name, args.index_cache)
    progress = None if args.json else _progress
    store = cached_index([dataset.corpus_path], embedder, directory, progress)
    if progress:
        print(file=sys.stderr)
    analyser = f"keyword-stem{int(config.keyword.stem)}-stop{int(config.keyword.stop_words)}"
    retriever = Retriever(store, embedder, config, keyword_dir=os.path.join(directory, analyser))
    modes = list(MODES) if args.mode == "all" else [args.mode]
    return run(dataset, retriever, modes, corpus_to_paper_ids(dataset, store))


def configure(config: RetrievalConfig, settings: Sequence[str]) -> RetrievalConfig:
    """Apply ``field=value`` overrides (``keyword.k1=1.2`` reaches into the keyword settings)."""
    for setting in settings:
        name, sep, raw = setting.partition("=")
        if not sep:
            raise ValueError(f"--set wants FIELD=VALUE, not {setting!r}")
        target = config.keyword if name.startswith("keyword.") else config
        field = name.removeprefix("keyword.")
        if field not in {f.name for f in fields(target)} or field == "keyword":
            raise ValueError(f"unknown setting {name!r}")
        current = getattr(target, field)
        value = raw.lower() in ("1", "true", "yes") if isinstance(current, bool) else type(current)(raw)
        changed = replace(target, **{field: value})
        config = replace(config, keyword=changed) if target is config.keyword else changed
    return config


def _progress(event) -> None:
    print(f"\r{event}", end="", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
