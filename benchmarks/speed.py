"""``python -m benchmarks.speed [--json] [--quick] [--cache DIR --sizes 100000,1000000]``: speed and memory in one run.

1. Ingest papers/s of ``ingest.pipeline`` against the naive loop on the same SciFact
   abstracts, and each index's dense nDCG@10 on the training claims. The two alternate
   (naive, ours, ours, naive on two halves) so that a change in load falls on both.
2. Prompt tokens per answer and time to first token through llama.cpp.
3. Per index size (synthetic papers: :mod:`benchmarks.speed_synth`): app start (index,
   embedder, retriever and saved keyword index opened; then the first search, which loads
   Chroma's vector index), resident memory after start and after 1,000 searches, the keyword
   index's memory and disk, hybrid search p50/p95 for ``k=5`` without a filter and with a
   year and a category filter, the index's size on disk and build time, and recall@10 of
   the HNSW search against exact search on 200 queries (:mod:`benchmarks.speed_scale`).
4. At the largest size, the same searches through a local ``chroma run`` server.

With ``--cache DIR`` the indexes are the ones :mod:`benchmarks.speed_cache` built there
(``DIR/index-N``; a million papers take hours to build, and this run only reads them);
without it they are built in a work directory (sizes default to 10k and 100k). Every stage
runs in its own process (:mod:`benchmarks.speed_stages`), so its memory is its own.

>>> label(1_000_000), label(100_000), label(250)
('1m', '100k', '250')
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class SpeedOptions:
    papers: int = 2000
    sizes: tuple[int, ...] = (10_000, 100_000)
    queries: int = 1000  # unfiltered searches per size (memory is read after them)
    filtered: int = 200  # searches per filter
    recall_queries: int = 200
    server_queries: int = 200
    questions: int = 5
    abstracts: int = 6000  # abstracts whose sentences make the synthetic papers (every SciFact abstract)
    ndcg_queries: int = 0  # 0: every training claim
    parts: int = 2  # halves: naive, ours, ours, naive
    backend: str = "auto"  # our embedder's backend ("torch": the fp32 baseline)
    cache: str | None = None  # built indexes: DIR/index-N
    port: int = 0  # chroma run's port (0: a free one)
    inline: bool = False  # run the stages in this process (tests: fast, but one RSS for all)


QUICK = SpeedOptions(papers=16, sizes=(100, 200), queries=4, filtered=3, recall_queries=5, server_queries=3,
                     questions=2, abstracts=20, ndcg_queries=10, parts=1, inline=True)


def label(size: int) -> str:
    for unit, name in ((1_000_000, "m"), (1000, "k")):
        if size >= unit and size % unit == 0:
            return f"{size // unit}{name}"
    return str(size)


def stage(name: str, *args, inline: bool = False) -> dict:
    if inline:
        from benchmarks import speed_stages

        speed_stages.STARTED = time.perf_counter()  # the "process start" that app start-up is timed from
        result = speed_stages.STAGES[name]([str(a) for a in args])
        return {**result, "rss_mb": speed_stages.peak_rss_mb(), "load": os.getloadavg()[0]}
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    try:
        subprocess.run([sys.executable, "-m", "benchmarks.speed_stages", name, out, *map(str, args)], check=True)
        with open(out, encoding="utf-8") as fh:
            return json.load(fh)
    finally:
        os.unlink(out)


def run_ingest(options: SpeedOptions, workdir: str, log=print) -> dict:
    ours, naive = os.path.join(workdir, "ours"), os.path.join(workdir, "naive")
    runs = {"ours": [], "naive": []}
    for part in range(options.parts):  # ABBA: load drift during the run falls on both
        for kind in (("naive", "ours") if part % 2 == 0 else ("ours", "naive")):
            runs[kind].append(stage("ingest", kind, ours if kind == "ours" else naive, workdir, options.papers,
                                    part, options.parts, options.ndcg_queries, options.backend, inline=options.inline))
            log(f"ingest {kind} part {part + 1}: {runs[kind][-1]}")
    pps = {k: sum(r["papers"] for r in v) / sum(r["seconds"] for r in v) for k, v in runs.items()}
    return {"ours_pps": pps["ours"], "naive_pps": pps["naive"], "ratio": pps["ours"] / pps["naive"],
            "ndcg_ours": runs["ours"][-1]["ndcg"], "ndcg_naive": runs["naive"][-1]["ndcg"],
            "chunks_ours": sum(r["chunks"] for r in runs["ours"]), "papers": options.papers,
            "load": [r["load_during"] for v in runs.values() for r in v],
            "rss_ours": max(r["rss_mb"] for r in runs["ours"]), "rss_naive": max(r["rss_mb"] for r in runs["naive"])}


def run_size(options: SpeedOptions, size: int, workdir: str, log=print) -> dict:
    """Every figure for one index size; the index comes from the cache or is built in ``workdir``."""
    from benchmarks.speed_synth import read_build_log

    if options.cache:
        index = os.path.join(options.cache, f"index-{size}")
        if not os.path.isfile(os.path.join(index, "speed_build.json")):
            raise SystemExit(f"no built index at {index}: run python -m benchmarks.speed_cache --cache "
                             f"{options.cache} --sizes {','.join(map(str, options.sizes))} first")
    else:
        index = os.path.join(workdir, "synthetic")
        stage("build", index, size, options.abstracts, inline=options.inline)
    built = read_build_log(index)
    app = stage("scale_app", index, options.queries, options.filtered, inline=options.inline)
    log(f"{label(size)} app: {json.dumps(app)}")
    recall = stage("scale_recall", index, options.recall_queries, inline=options.inline)
    log(f"{label(size)} recall: {json.dumps(recall)}")
    return {**app, "p50_ms": app["searches"]["none"]["p50_ms"], "p95_ms": app["searches"]["none"]["p95_ms"],
            "start_s": app["first_search_s"], "build": built.__dict__, "recall": recall, "index": index}


def run(options: SpeedOptions, workdir: str, log=print) -> dict:
    ingest = run_ingest(options, workdir, log)
    answers = stage("answers", os.path.join(workdir, "ours"), options.questions, inline=options.inline)
    log(f"answers: {answers}")
    retrieval = {}
    for size in sorted(options.sizes):
        retrieval[label(size)] = run_size(options, size, workdir, log)
    largest = retrieval[label(max(options.sizes))]
    server = stage("scale_server", largest["index"], options.port or free_port(), options.server_queries,
                   max(1, options.server_queries // 2), inline=options.inline)
    log(f"server: {json.dumps(server)}")
    return {"ingest": ingest, "retrieval": retrieval, "server": {label(max(options.sizes)): server},
            "prompt_tokens": answers["prompt_tokens"], "ttft_s": answers["ttft_s"],
            "rss_mb": {"ingest": ingest["rss_ours"], "ingest_naive": ingest["rss_naive"],
                       "app": largest["rss_after"]["VmHWM"], "answers": answers["rss_mb"]},
            "load": os.getloadavg()[0]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(result: dict, seconds: float) -> str:
    from benchmarks.speed_report import tables

    return tables(result, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (tests): 16 papers, 100/200-paper indexes")
    parser.add_argument("--papers", type=int, help="SciFact abstracts to ingest (default 2000)")
    parser.add_argument("--sizes", help="index sizes, e.g. 100000,1000000 (default 10000,100000)")
    parser.add_argument("--cache", help="use the indexes benchmarks.speed_cache built in this directory")
    parser.add_argument("--port", type=int, help="port for the chroma run server (default: a free one)")
    parser.add_argument("--backend", choices=("auto", "bf16", "torch"), help="our embedder's backend (default auto)")
    parser.add_argument("--workdir", help="keep the indexes here (default: a temporary directory, removed)")
    args = parser.parse_args(argv)
    options = QUICK if args.quick else SpeedOptions()
    changes = {"papers": args.papers, "backend": args.backend, "port": args.port,
               "cache": os.path.abspath(args.cache) if args.cache else None,
               "sizes": tuple(int(s) for s in args.sizes.split(",")) if args.sizes else None}
    options = replace(options, **{k: v for k, v in changes.items() if v})
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    shared_tiktoken = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tiktoken")
    if os.path.isdir(shared_tiktoken):  # offline machines: the encodings the chunker needs
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", os.path.abspath(shared_tiktoken))
    workdir = args.workdir or tempfile.mkdtemp(prefix="paperchat-speed-")
    started = time.perf_counter()
    try:
        result = run(options, workdir, log=(lambda *_: None) if args.json else print)
    except subprocess.CalledProcessError as exc:
        print(f"benchmark stage failed: {' '.join(exc.cmd[3:5])}", file=sys.stderr)
        return 1
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result) if args.json else report(result, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
