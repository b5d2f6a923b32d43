"""``python -m benchmarks.speed_cache --cache DIR --sizes 100000,1000000``: build the synthetic indexes once.

The indexes :mod:`benchmarks.speed` times at scale are built here, outside the repository,
and kept: ``DIR/index-100000``, ``DIR/index-1000000``. One index grows to the largest size;
when it holds a smaller size it is copied aside first, so the 100k index is the first 100k
papers of the million. Each is then given its keyword index (what the app would otherwise
build on first start). Every step resumes where a killed run stopped; progress goes to
stdout, and ``DIR/index-N/speed_build.json`` records the write time, the papers and chunks
written and the load average along the way. Run it with ``nice``: a million papers take
hours on two cores (about 10 ms of CPU per paper in Chroma, ~40 KB of disk).

>>> index_path("/c", 100_000)
'/c/index-100000'
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

SCIFACT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "scifact")
POOL_ABSTRACTS = 6000  # every SciFact abstract: ~42,600 sentences and ~5,100 titles


def index_path(cache: str, papers: int) -> str:
    return os.path.join(cache, f"index-{papers}")


def grow(cache: str, index: str, papers: int, log=print) -> dict:
    """Grow the synthetic index at ``index`` to ``papers`` (resuming), returning its build log."""
    from benchmarks.speed_synth import grow_index, sentence_pool
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    embedder = Embedder()
    pool = sentence_pool(SCIFACT, embedder, POOL_ABSTRACTS, cache)
    store = Store.open(StoreConfig(path=index), embedder.name, embedder.dim)
    done = grow_index(store, pool, papers, log=log, made={"abstracts": POOL_ABSTRACTS, "cache": cache})
    return done.__dict__


def keyword(index: str) -> dict:
    """Build (or bring up to date) the index's saved keyword index, as the app's first start would."""
    from chat.keyword import KeywordIndex
    from ingest.store import Store, StoreConfig

    started = time.perf_counter()
    store = Store.open_existing(StoreConfig(path=index))
    built = KeywordIndex.open(store, os.path.join(index, "keyword"))
    return {"keyword_s": time.perf_counter() - started, "rebuilt": built.built, "papers": len(built)}


def snapshot(source: str, target: str) -> None:
    """Copy a closed index directory (no process has it open: each step runs in its own process)."""
    if os.path.isdir(target):
        return
    shutil.copytree(source, target + ".tmp", dirs_exist_ok=True)
    os.replace(target + ".tmp", target)


def run_step(*args: str) -> dict:
    """One step in its own process, so that Chroma's files are closed when it ends."""
    with subprocess.Popen([sys.executable, "-m", "benchmarks.speed_cache", "--step", *args], stdout=subprocess.PIPE,
                          text=True) as step:
        last = ""
        for line in step.stdout:  # progress as it comes; the result is the last line
            if last:
                print(last, flush=True)
            last = line.rstrip("\n")
    if step.returncode:
        raise subprocess.CalledProcessError(step.returncode, step.args)
    return json.loads(last)


def build_all(cache: str, sizes: list[int]) -> dict:
    """Every size: grow the largest index through each smaller size, copying it aside at each."""
    sizes, largest = sorted(sizes), index_path(cache, max(sizes))
    results = {}
    for size in sizes:
        target = index_path(cache, size)
        if size != sizes[-1] and os.path.isfile(os.path.join(target, "speed_build.json")):
            results[size] = {"snapshot": True}
            continue
        results[size] = run_step("grow", cache, largest, str(size))
        if size != sizes[-1]:
            snapshot(largest, target)
    for size in sizes:
        results[size]["keyword"] = run_step("keyword", index_path(cache, size))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from benchmarks.speed_stages import volunteer_for_oom

    volunteer_for_oom()  # the growing index is held in memory (~14 GB at a million papers)
    if argv and argv[0] == "--step":  # internal: one step in its own process, its result as JSON on the last line
        step, args = argv[1], argv[2:]
        result = grow(args[0], args[1], int(args[2]), log=lambda m: print(m, flush=True)) if step == "grow" \
            else keyword(args[0])
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed_cache", description=__doc__.split("\n")[0])
    parser.add_argument("--cache", required=True, help="directory for the indexes (outside the repository)")
    parser.add_argument("--sizes", default="100000,1000000", help="papers per index, comma-separated")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    shared_tiktoken = os.path.join(os.path.dirname(SCIFACT), "..", "tiktoken")
    if os.path.isdir(shared_tiktoken):
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", os.path.abspath(shared_tiktoken))
    started = time.perf_counter()
    results = build_all(os.path.abspath(args.cache), [int(s) for s in args.sizes.split(",")])
    print(json.dumps({"built": results, "seconds": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
