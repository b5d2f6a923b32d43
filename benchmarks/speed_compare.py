"""Side by side, previous code against current, on one built index: ``python -m benchmarks.speed_compare``.

``keyword --index DIR [--old REV]``: the keyword index of git revision ``REV`` (default: the
one before it was memory-mapped) against today's, each in its own processes, alternating
old/new so that load drift falls on both: building it from the store, opening the saved
one (time and resident memory), BM25 over 100 queries (same top 10, time per query), and
a year / category / author filter mask. Prints one line per figure with the ratio, and the
load average.

>>> ratio(2.0, 1.0)
'2.00x'
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEFORE_MMAP = "8061051^"  # the last revision whose keyword index was loaded into memory from npz + json


def ratio(old: float, new: float) -> str:
    return f"{old / new:.2f}x" if new else "inf"


def old_keyword(rev: str):
    """chat.keyword as it was at ``rev`` (with its chat.postings), loaded from git into a temporary folder."""
    folder = tempfile.mkdtemp(prefix="paperchat-old-")
    for name in ("postings", "keyword"):
        source = subprocess.run(["git", "show", f"{rev}:chat/{name}.py"], cwd=ROOT, check=True, capture_output=True,
                                text=True).stdout
        source = source.replace("from chat.postings import", "from old_postings import")
        with open(os.path.join(folder, f"old_{name}.py"), "w", encoding="utf-8") as fh:
            fh.write(source)
    sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("old_keyword", os.path.join(folder, "old_keyword.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_keyword"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))


def _hwm_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:"))


def keyword_probe(which: str, index: str, directory: str, action: str, rev: str) -> dict:
    """One measurement in this process: ``build`` (from the store into ``directory``) or ``open`` (the saved one)."""
    from benchmarks.speed_scale import questions
    from ingest.store import Store, StoreConfig

    module = old_keyword(rev) if which == "old" else importlib.import_module("chat.keyword")
    store = Store.open_existing(StoreConfig(path=index))
    before = _rss_mb()
    started = time.perf_counter()
    kw = module.KeywordIndex.open(store, directory)
    out = {"seconds": time.perf_counter() - started, "rss_mb": _rss_mb() - before, "peak_mb": _hwm_mb(),
           "built": kw.built, "papers": len(kw)}
    if action == "open":
        texts = questions(100)
        started = time.perf_counter()
        tops = [[pid for pid, _ in kw.top(t, 10)] for t in texts]
        out["query_ms"] = (time.perf_counter() - started) * 1000 / len(texts)
        out["tops"] = tops
        for name, kwargs in (("year", {"year_min": 2023}), ("category", {"category": "cs.CL"}),
                             ("author", {"author": "chen"})):
            started = time.perf_counter()
            for _ in range(5):
                mask = kw.papers.allowed(**kwargs)
            out[f"{name}_ms"] = (time.perf_counter() - started) * 1000 / 5
            out[f"{name}_passing"] = int(mask.sum())
        out["rss_after_mb"] = _rss_mb() - before
    return out


def compare_keyword(index: str, rev: str, rounds: int = 2) -> list[str]:
    work = tempfile.mkdtemp(prefix="paperchat-kwcmp-")
    results: dict[str, list[dict]] = {"old": [], "new": []}
    try:
        for n in range(rounds):
            for which in (("old", "new") if n % 2 == 0 else ("new", "old")):
                directory = os.path.join(work, which)
                shutil.rmtree(directory, ignore_errors=True)
                build = _probe(which, index, directory, "build", rev)
                opened = _probe(which, index, directory, "open", rev)
                results[which].append({"build": build, "open": opened, "load": os.getloadavg()[0]})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _lines(results)


def _probe(which: str, index: str, directory: str, action: str, rev: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.speed_compare", "--probe", which, index, directory, action,
                          rev], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _lines(results: dict) -> list[str]:
    def med(which: str, stage: str, key: str) -> float:
        return float(np.median([r[stage][key] for r in results[which]]))

    same = all(o["open"]["tops"] == n["open"]["tops"] for o, n in zip(results["old"], results["new"]))
    lines = []
    for stage, key, what in (("build", "seconds", "build from the store, s"), ("build", "peak_mb", "build, peak RSS MB"),
                             ("open", "seconds", "open the saved index, s"), ("open", "rss_mb", "RSS to open, MB"),
                             ("open", "rss_after_mb", "RSS after 100 queries and filters, MB"),
                             ("open", "query_ms", "BM25 top 10, ms per query"),
                             ("open", "year_ms", "year filter mask, ms"), ("open", "category_ms", "category filter mask, ms"),
                             ("open", "author_ms", "author filter mask, ms")):
        old, new = med("old", stage, key), med("new", stage, key)
        lines.append(f"{what}: old {old:.2f}, new {new:.2f} ({ratio(old, new)})")
    lines.append(f"same top 10 for every query: {same}; passing year/category/author: "
                 f"{[results['new'][0]['open'][k] for k in ('year_passing', 'category_passing', 'author_passing')]} "
                 f"(old {[results['old'][0]['open'][k] for k in ('year_passing', 'category_passing', 'author_passing')]})")
    loads = [r["load"] for v in results.values() for r in v]
    lines.append(f"load average {min(loads):.1f}-{max(loads):.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--probe":
        print(json.dumps(keyword_probe(*argv[1:6])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed_compare", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("keyword",))
    parser.add_argument("--index", required=True)
    parser.add_argument("--old", default=BEFORE_MMAP, help=f"git revision of the previous code (default {BEFORE_MMAP})")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    for line in compare_keyword(os.path.abspath(args.index), args.old, args.rounds):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
