"""``python -m benchmarks.speed [--json] [--quick]``: ingest, retrieval, answer and memory figures in one run.

1. Ingest papers/s of ``ingest.pipeline`` against the naive loop on the same
   SciFact abstracts, and each index's dense nDCG@10 on the training claims. The
   two alternate (naive, ours, ours, naive on two halves) so that a change in the
   machine's load during the run falls on both.
2. Hybrid retrieval latency p50/p95 at two index sizes (10k and 100k synthetic
   papers: see :mod:`benchmarks.speed_synth`), and the app's start time on the
   larger index (store, embedder and retriever opened; the keyword index loaded).
3. Prompt tokens per answer and time to first token through llama.cpp.
4. Peak RSS of each stage's process.

Every stage runs in its own process (:mod:`benchmarks.speed_stages`). Example of
the JSON shape (figures elided)::

    {"ingest": {"ours_pps", "naive_pps", "ratio", "ndcg_ours", "ndcg_naive"},
     "retrieval": {"10k": {"p50_ms", "p95_ms", ...}, "100k": {...}},
     "prompt_tokens", "ttft_s", "rss_mb": {"ingest", "ingest_naive", "app", "answers"}}

>>> labels((10_000, 100_000)), labels((300, 600))
(('10k', '100k'), ('10k', '100k'))
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class SpeedOptions:
    papers: int = 2000
    sizes: tuple[int, int] = (10_000, 100_000)
    queries: int = 50
    questions: int = 5
    abstracts: int = 1500  # abstracts whose sentences make the synthetic papers
    ndcg_queries: int = 0  # 0: every training claim
    parts: int = 2  # halves: naive, ours, ours, naive
    backend: str = "auto"  # our embedder's backend ("torch": the fp32 baseline)
    inline: bool = False  # run the stages in this process (tests: fast, but one RSS for all)


QUICK = SpeedOptions(papers=16, sizes=(100, 200), queries=3, questions=2, abstracts=20, ndcg_queries=10,
                     parts=1, inline=True)


def labels(sizes: tuple[int, int]) -> tuple[str, str]:
    """The JSON keys of the two sizes: always "10k" and "100k", whatever a quick run used."""
    return "10k", "100k"


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


def run(options: SpeedOptions, workdir: str, log=print) -> dict:
    ours, naive = os.path.join(workdir, "ours"), os.path.join(workdir, "naive")
    runs = {"ours": [], "naive": []}
    for part in range(options.parts):  # ABBA: load drift during the run falls on both
        for kind in (("naive", "ours") if part % 2 == 0 else ("ours", "naive")):
            runs[kind].append(stage("ingest", kind, ours if kind == "ours" else naive, workdir, options.papers,
                                    part, options.parts, options.ndcg_queries, options.backend, inline=options.inline))
            log(f"ingest {kind} part {part + 1}: {runs[kind][-1]}")
    pps = {k: sum(r["papers"] for r in v) / sum(r["seconds"] for r in v) for k, v in runs.items()}
    ndcg_ours, ndcg_naive = runs["ours"][-1]["ndcg"], runs["naive"][-1]["ndcg"]
    answers = stage("answers", ours, options.questions, inline=options.inline)
    log(f"answers: {answers}")
    synthetic, retrieval, built = os.path.join(workdir, "synthetic"), {}, {}
    for label, size in zip(labels(options.sizes), options.sizes):
        built[label] = stage("build", synthetic, size, options.abstracts, inline=options.inline)
        retrieval[label] = stage("app", synthetic, options.queries, inline=options.inline)
        log(f"{label} ({size} papers): build {built[label]}  app {retrieval[label]}")
    big = labels(options.sizes)[1]
    return {
        "ingest": {"ours_pps": pps["ours"], "naive_pps": pps["naive"], "ratio": pps["ours"] / pps["naive"],
                   "ndcg_ours": ndcg_ours, "ndcg_naive": ndcg_naive,
                   "chunks_ours": sum(r["chunks"] for r in runs["ours"]), "papers": options.papers},
        "retrieval": {label: {"p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "papers": r["papers"],
                              "start_s": r["start_s"], "keyword_rebuilt": r["keyword_rebuilt"],
                              "disk_mb": built[label]["disk_mb"]} for label, r in retrieval.items()},
        "prompt_tokens": answers["prompt_tokens"], "ttft_s": answers["ttft_s"],
        "rss_mb": {"ingest": max(r["rss_mb"] for r in runs["ours"]),
                   "ingest_naive": max(r["rss_mb"] for r in runs["naive"]),
                   "app": retrieval[big]["rss_mb"], "answers": answers["rss_mb"]},
        "load": os.getloadavg()[0],
    }


def report(result: dict, seconds: float) -> str:
    i, r = result["ingest"], result["retrieval"]
    lines = [f"ingest: ours {i['ours_pps']:.1f} papers/s ({i['chunks_ours']} chunks), naive {i['naive_pps']:.1f} "
             f"papers/s: {i['ratio']:.2f}x; dense nDCG@10 ours {i['ndcg_ours']:.4f}, naive {i['ndcg_naive']:.4f}"]
    for label, x in r.items():
        lines.append(f"retrieval {label} ({x['papers']} papers): p50 {x['p50_ms']:.1f} ms, p95 {x['p95_ms']:.1f} ms; "
                     f"app start {x['start_s']:.1f} s (keyword index rebuilt: {x['keyword_rebuilt']}); "
                     f"index {x['disk_mb']:.0f} MB on disk")
    lines.append(f"answers: {result['prompt_tokens']:.0f} prompt tokens, first token after {result['ttft_s']:.2f} s")
    lines.append("peak RSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in result["rss_mb"].items()))
    lines.append(f"load average {result['load']:.1f}; {seconds:.0f} s in all")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (tests): 48 papers, 300/600-paper indexes")
    parser.add_argument("--papers", type=int, help="SciFact abstracts to ingest (default 2000)")
    parser.add_argument("--sizes", help="two index sizes, e.g. 10000,100000")
    parser.add_argument("--backend", choices=("auto", "bf16", "torch"), help="our embedder's backend (default auto)")
    parser.add_argument("--workdir", help="keep the indexes here (default: a temporary directory, removed)")
    args = parser.parse_args(argv)
    options = QUICK if args.quick else SpeedOptions()
    if args.papers:
        options = SpeedOptions(**{**options.__dict__, "papers": args.papers})
    if args.backend:
        options = SpeedOptions(**{**options.__dict__, "backend": args.backend})
    if args.sizes:
        options = SpeedOptions(**{**options.__dict__, "sizes": tuple(int(s) for s in args.sizes.split(","))[:2]})
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
