"""Stages of ``benchmarks.speed`` on the large cached indexes (see :mod:`benchmarks.speed_cache`).

Each runs in its own process (``python -m benchmarks.speed_stages STAGE ...``), so its
memory is its own:

- ``scale_app``: start as the app does (embedder, store, retriever with its saved keyword
  index), answer a first search (Chroma loads the vector index then), then 1,000 hybrid
  searches (``k=5``) and 200 each with a year filter and a category filter; resident
  memory after start and after the 1,000, and the keyword index's share of it.
- ``scale_recall``: recall@10 of Chroma's HNSW search against exact search over every
  chunk vector (recomputed from the saved compositions) on 200 queries, at the search
  widths (``ef``) 100, 200, 400 and 800: Chroma searches with ``ef = max(ef_search, k)``
  (``ef_search`` 100 by default), so a query for the ``k`` nearest with ``k`` ≥ 100 is a
  search at ``ef = k`` (the ``k10`` figures are ``ef`` 100).
- ``scale_server``: the same searches through a ``chroma run`` server on the index.

The queries are the SciFact training claims and the PubMedQA training questions (1,309):
the synthetic papers are made of SciFact sentences, so the claims find related text.

>>> FILTERS["year"], FILTERS["category"]
({'year_min': 2023}, {'category': 'cs.CL'})
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
FILTERS = {"none": {}, "year": {"year_min": 2023}, "category": {"category": "cs.CL"}}
QUERIES, FILTERED = 1000, 200


def questions(n: int) -> list[str]:
    from benchmarks.beir import load_beir

    texts = [*load_beir(os.path.join(DATA, "scifact"), "train").queries.values(),
             *load_beir(os.path.join(DATA, "pubmedqa"), "train").queries.values()]
    return (texts * (n // len(texts) + 1))[:n]


def memory_mb(pid: str = "self", under: str | None = None) -> dict[str, float]:
    """VmRSS / VmHWM / RssAnon / RssFile of a process, and (``under``) the resident MB of its mappings of files there."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(line.split()[1]) / 1024
    if under:
        out["mapped"] = _mapped_rss(pid, os.path.abspath(under))
    return out


def _mapped_rss(pid: str, folder: str) -> float:
    total, inside = 0, False
    with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.split()
            if parts and "-" in parts[0] and len(parts) >= 5 and not line.startswith(("Rss", "Size")):
                inside = len(parts) >= 6 and parts[5].startswith(folder)
            elif inside and line.startswith("Rss:"):
                total += int(parts[1])
    return total / 1024


def _timed(retriever, texts: list[str], filters) -> list[float]:
    times = []
    for text in texts:
        started = time.perf_counter()
        retriever.search(text, k=5, filters=filters)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _percentiles(times: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "mean_ms": float(np.mean(times)), "n": len(times)}


def searches(retriever, queries: int = QUERIES, filtered: int = FILTERED, after=None) -> dict:
    """Latency of ``queries`` unfiltered searches, then ``filtered`` per filter (other questions)."""
    from chat.retrieve import Filters

    texts = questions(queries + filtered)
    out = {"none": _percentiles(_timed(retriever, texts[:queries], None))}
    if after:
        after()
    for name, kwargs in FILTERS.items():
        if kwargs:
            rows = texts[queries:queries + filtered] if queries + filtered <= len(texts) else texts[:filtered]
            out[name] = {**_percentiles(_timed(retriever, rows, Filters(**kwargs))),
                         "passing": retriever.matching(Filters(**kwargs)) if hasattr(retriever, "matching") else None}
    return out


def scale_app(index: str, queries: int = QUERIES, filtered: int = FILTERED) -> dict:
    """App start, first search, memory and search latency on the index at ``index``."""
    from benchmarks import speed_stages
    from chat.retrieve import Retriever
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    embedder = Embedder()
    store = Store.open_existing(StoreConfig(path=index))
    before_keyword = memory_mb()
    retriever = Retriever(store, embedder)
    opened = time.perf_counter() - speed_stages.STARTED
    keyword_mb = memory_mb()["VmRSS"] - before_keyword["VmRSS"]
    retriever.search(questions(1)[0], k=5)
    first = time.perf_counter() - speed_stages.STARTED
    at_start = memory_mb(under=os.path.join(index, "keyword"))
    state = {}
    result = searches(retriever, queries, filtered,
                      after=lambda: state.update(after=memory_mb(under=os.path.join(index, "keyword"))))
    return {"papers": len(retriever.keyword), "chunks": store.stats().chunks, "open_s": opened, "first_search_s": first,
            "keyword_rebuilt": bool(retriever.keyword.built), "keyword_load_mb": keyword_mb,
            "keyword_disk_mb": _disk_mb(os.path.join(index, "keyword")), "disk_mb": _disk_mb(index, skip="speed_"),
            "rss_start": at_start, "rss_after": state["after"], "searches": result}


def scale_recall(index: str, n: int = 200, widths: tuple[int, ...] = (10, 200, 400, 800)) -> dict:
    """recall@10 of the HNSW search against exact search over every chunk vector, per search width."""
    from benchmarks.speed_synth import exact_top, open_pool
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    embedder = Embedder()
    pool = open_pool(index, embedder, os.path.join(DATA, "scifact"))
    vectors = embedder.embed(questions(n))
    started = time.perf_counter()
    exact = exact_top(pool, index, vectors, 10)
    exact_s = time.perf_counter() - started
    store = Store.open_existing(StoreConfig(path=index))
    out = {"queries": n, "exact_s": exact_s}
    for width in widths:
        found, started = [], time.perf_counter()
        for v in vectors:
            found.append([chunk_id for chunk_id, _ in store.nearest(v, width)][:10])
        ms = (time.perf_counter() - started) * 1000 / n
        recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)])
        out[f"k{width}"] = {"recall_at_10": float(recall), "ms_per_query": ms}
    return out


def scale_server(index: str, port: int, queries: int = 200, filtered: int = 100) -> dict:
    """Start ``chroma run`` on ``index``, then time the same searches through it (keyword index from disk)."""
    from chat.retrieve import Retriever
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    log = open(os.path.join(os.path.dirname(os.path.abspath(index)), f"chroma-server-{port}.log"), "w")
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "chroma"), "run", "--path", index,
                               "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        started = time.perf_counter()
        _wait_for_port(port, 300)
        embedder = Embedder()
        store = Store.open_existing(StoreConfig(host="127.0.0.1", port=port))
        retriever = Retriever(store, embedder, keyword_dir=os.path.join(index, "keyword"))
        retriever.search(questions(1)[0], k=5)
        first = time.perf_counter() - started
        result = searches(retriever, queries, filtered)
        return {"first_search_s": first, "server_rss": memory_mb(str(server.pid)), "client_rss": memory_mb(),
                "searches": result}
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"chroma run did not listen on port {port} within {timeout_s:.0f} s")


def _disk_mb(path: str, skip: str | None = None) -> float:
    total = 0
    for folder, dirs, files in os.walk(path):
        if skip:
            dirs[:] = [d for d in dirs if not d.startswith(skip)]
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files if not (skip and f.startswith(skip)))
    return total / 2**20
