"""Side by side, previous code against current, on one built index: ``python -m benchmarks.speed_compare``.

``keyword --index DIR [--old REV]``: the keyword index of git revision ``REV`` (default: the
one before it was memory-mapped) against today's, each in its own processes, alternating
old/new so that load drift falls on both: building it from the store, opening the saved
one (time and resident memory), BM25 over 100 queries (same top 10, time per query), and
a year / category / author filter mask. Prints one line per figure with the ratio, and the
load average.

``writes [--papers 6000] [--batches 256,2000,5000]``: the same synthetic papers written with
``Store.write`` in batches of each size, into fresh indexes, rotating the order between
rounds: papers/s per batch size (the ingest's default is 256 papers per write).

``retrieval --index DIR --old REV``: ``chat/retrieve.py`` of ``REV`` against today's (the
keyword index is today's in both), alternating, on the same searches without a filter and
with each filter of :data:`benchmarks.speed_scale.FILTERS` plus a narrow one: p50 / p95
and how many of the top 5 papers agree.

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


def old_module(rev: str, names: tuple[str, ...]):
    """``chat/<names[-1]>.py`` as it was at ``rev`` (with the other ``names`` it imports, from the same revision)."""
    folder = tempfile.mkdtemp(prefix="paperchat-old-")
    for name in names:
        source = subprocess.run(["git", "show", f"{rev}:chat/{name}.py"], cwd=ROOT, check=True, capture_output=True,
                                text=True).stdout
        for other in names:
            source = source.replace(f"from chat.{other} import", f"from old_{other} import")
        with open(os.path.join(folder, f"old_{name}.py"), "w", encoding="utf-8") as fh:
            fh.write(source)
    sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"old_{names[-1]}", os.path.join(folder, f"old_{names[-1]}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"old_{names[-1]}"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def old_keyword(rev: str):
    return old_module(rev, ("postings", "keyword"))


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


NARROW = {"category": "q-fin.ST"}  # ~0.5% of the synthetic papers: between "exact by id" and "over-fetch"


def retrieval_probe(which: str, index: str, rev: str, queries: str) -> dict:
    """Searches through one version of the retriever in this process: latency and top 5 per filter."""
    from benchmarks.speed_scale import FILTERS, questions
    from chat.retrieve import Filters
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    module = old_module(rev, ("retrieve",)) if which == "old" else importlib.import_module("chat.retrieve")
    retriever = module.Retriever(Store.open_existing(StoreConfig(path=index)), Embedder())
    texts = questions(int(queries) + 3)
    retriever.search(texts[0], k=5)
    out = {}
    for name, kwargs in {**FILTERS, "narrow": NARROW}.items():
        filters = module.Filters(**kwargs) if kwargs else None
        times, tops = [], []
        for text in texts[3:]:
            started = time.perf_counter()
            hits = retriever.search(text, k=5, filters=filters)
            times.append((time.perf_counter() - started) * 1000)
            tops.append([h.paper.paper_id for h in hits])
        out[name] = {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95)), "tops": tops}
    return out


def compare_retrieval(index: str, rev: str, queries: int, rounds: int = 2) -> list[str]:
    results: dict[str, list[dict]] = {"old": [], "new": []}
    loads = []
    for n in range(rounds):
        for which in (("old", "new") if n % 2 == 0 else ("new", "old")):
            out = subprocess.run([sys.executable, "-m", "benchmarks.speed_compare", "--retrieval-probe", which, index,
                                  rev, str(queries)], check=True, capture_output=True, text=True, cwd=ROOT)
            results[which].append(json.loads(out.stdout.strip().splitlines()[-1]))
            loads.append(os.getloadavg()[0])
    lines = []
    for name in results["new"][0]:
        old = [np.median([r[name][p] for r in results["old"]]) for p in ("p50", "p95")]
        new = [np.median([r[name][p] for r in results["new"]]) for p in ("p50", "p95")]
        agree = np.mean([len(set(a) & set(b)) / max(len(b), 1) for a, b in
                         zip(results["old"][0][name]["tops"], results["new"][0][name]["tops"])])
        lines.append(f"{name}: p50 old {old[0]:.1f} ms, new {new[0]:.1f} ms ({ratio(old[0], new[0])}); "
                     f"p95 old {old[1]:.1f}, new {new[1]:.1f} ({ratio(old[1], new[1])}); top 5 agree {agree:.2f}")
    lines.append(f"load average {min(loads):.1f}-{max(loads):.1f}")
    return lines


def writes_probe(papers: str, batch: str, folder: str) -> dict:
    """Write ``papers`` synthetic papers in batches of ``batch`` into a fresh index: seconds in Store.write."""
    from benchmarks.speed_synth import CACHE, sentence_pool, synth_batch
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    embedder = Embedder()
    pool = sentence_pool(os.path.join(ROOT, "..", "shared", "data", "scifact"), embedder, 200, CACHE)
    made = [synth_batch(pool, start, 500) for start in range(0, int(papers), 500)]
    all_papers = [p for m in made for p in m.papers]
    chunks = [c for m in made for c in m.chunks]
    vectors = np.concatenate([m.vectors for m in made])
    first_chunk = np.concatenate([[0], np.cumsum([sum(1 for c in chunks if c.paper_id == p.paper_id)
                                                  for p in all_papers])])
    store = Store.open(StoreConfig(path=folder), embedder.name, embedder.dim)
    size, seconds = int(batch), 0.0
    for start in range(0, len(all_papers), size):
        lo, hi = first_chunk[start], first_chunk[min(start + size, len(all_papers))]
        started = time.perf_counter()
        store.write(all_papers[start:start + size], chunks[lo:hi], vectors[lo:hi])
        seconds += time.perf_counter() - started
    return {"papers": len(all_papers), "chunks": len(chunks), "seconds": seconds, "cpu_s": time.process_time()}


def compare_writes(papers: int, batches: list[int], rounds: int = 2) -> list[str]:
    results: dict[int, list[dict]] = {b: [] for b in batches}
    loads = []
    for n in range(rounds):
        for batch in (batches if n % 2 == 0 else batches[::-1]):
            folder = tempfile.mkdtemp(prefix="paperchat-writes-")
            try:
                out = subprocess.run([sys.executable, "-m", "benchmarks.speed_compare", "--writes-probe", str(papers),
                                      str(batch), folder], check=True, capture_output=True, text=True, cwd=ROOT)
                results[batch].append(json.loads(out.stdout.strip().splitlines()[-1]))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            loads.append(os.getloadavg()[0])
    base = float(np.median([r["seconds"] for r in results[batches[0]]]))
    lines = []
    for batch, runs in results.items():
        seconds = float(np.median([r["seconds"] for r in runs]))
        lines.append(f"{batch} papers per write: {runs[0]['papers'] / seconds:.1f} papers/s "
                     f"({runs[0]['chunks']} chunks; {ratio(base, seconds)} the {batches[0]}-paper batches)")
    lines.append(f"load average {min(loads):.1f}-{max(loads):.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--writes-probe":
        print(json.dumps(writes_probe(*argv[1:4])))
        return 0
    if argv and argv[0] == "--probe":
        print(json.dumps(keyword_probe(*argv[1:6])))
        return 0
    if argv and argv[0] == "--retrieval-probe":
        print(json.dumps(retrieval_probe(*argv[1:5])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed_compare", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("keyword", "retrieval", "writes"))
    parser.add_argument("--index", help="a built index (keyword, retrieval)")
    parser.add_argument("--papers", type=int, default=6000, help="papers written (writes)")
    parser.add_argument("--batches", default="256,2000,5000", help="papers per Store.write (writes)")
    parser.add_argument("--old", default=BEFORE_MMAP, help=f"git revision of the previous code (default {BEFORE_MMAP})")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", type=int, default=100, help="searches per filter (retrieval)")
    args = parser.parse_args(argv)
    if args.what == "writes":
        lines = compare_writes(args.papers, [int(b) for b in args.batches.split(",")], args.rounds)
    elif not args.index:
        parser.error(f"{args.what} needs --index")
    elif args.what == "keyword":
        lines = compare_keyword(os.path.abspath(args.index), args.old, args.rounds)
    else:
        lines = compare_retrieval(os.path.abspath(args.index), args.old, args.queries, args.rounds)
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
