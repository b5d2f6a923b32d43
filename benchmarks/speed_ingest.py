"""Ingest speed: our pipeline against the naive loop on the same SciFact abstracts.

The naive loop is what a first version would do with the same chunks: per batch of
32 papers, cut them with :func:`ingest.chunk.chunk_paper`, sentence-transformers
``encode`` with its default settings (fp32, batches of 32), then Chroma ``add``.
Both index the same texts, so the gap in nDCG is the price of the faster
arithmetic alone. Ours is ``ingest.pipeline.ingest`` with the default
:class:`~models.embedder.Embedder`. Each index's dense nDCG@10 on the SciFact
training claims is measured by nearest chunks collapsed to papers.

>>> papers = select_corpus("../shared/data/scifact", 40)
>>> len(papers), sorted(papers[0])
(40, ['_id', 'metadata', 'text', 'title'])
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from benchmarks.beir import iter_corpus, load_beir, ndcg_at
from ingest.chunk import MINILM_WINDOW, ChunkerConfig, chunk_paper
from ingest.pipeline import ingest
from ingest.records import make_paper
from ingest.store import Store, StoreConfig
from models.embedder import DEFAULT_MODEL, Embedder, EmbedderConfig, load_sentence_transformer

NAIVE_BATCH = 32


@dataclass(frozen=True)
class IngestRun:
    papers: int
    seconds: float  # embedding and writing only: model loading is not counted
    chunks: int


def select_corpus(directory: str, n: int, split: str = "train") -> list[dict]:
    """``n`` abstracts: those judged for ``split`` first (so every claim can be answered), then file order."""
    judged = {doc for grades in load_beir(directory, split).qrels.values() for doc in grades}
    rows = list(iter_corpus(directory))
    chosen = [r for r in rows if r["_id"] in judged][:n]
    chosen += [r for r in rows if r["_id"] not in judged][:n - len(chosen)]
    return chosen


def write_jsonl(rows: list[dict], path: str) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    return path


def run_ours(rows: list[dict], index: str, workdir: str, embedder_config: EmbedderConfig = EmbedderConfig()) -> IngestRun:
    """``ingest`` the rows (written as a BEIR corpus file) into the index at ``index``."""
    embedder = Embedder(embedder_config)
    embedder.embed(["warm up the model"])
    store = Store.open(StoreConfig(path=index), embedder.name, embedder.dim)
    source = write_jsonl(rows, os.path.join(workdir, f"part-{rows[0]['_id']}.jsonl"))
    started = time.perf_counter()
    report = ingest([source], store, embedder)
    return IngestRun(len(rows), time.perf_counter() - started, report.chunks_embedded)


def run_naive(rows: list[dict], index: str) -> IngestRun:
    """encode per batch of 32 with default settings, then Chroma ``add`` per batch."""
    model = load_sentence_transformer(DEFAULT_MODEL)
    model.encode(["warm up the model"])
    store = Store.open(StoreConfig(path=index), DEFAULT_MODEL, 384)
    collection = store._chunks  # a plain Chroma collection: the naive loop skips our Store.write on purpose
    started = time.perf_counter()
    n_chunks = 0
    for start in range(0, len(rows), NAIVE_BATCH):
        papers = [make_paper(raw_id=r["_id"], title=r.get("title", ""), abstract=r["text"])
                  for r in rows[start:start + NAIVE_BATCH]]
        chunks = [c for p in papers for c in chunk_paper(p, ChunkerConfig(), MINILM_WINDOW)]
        vectors = model.encode([c.text for c in chunks])
        collection.add(ids=[c.chunk_id for c in chunks], embeddings=vectors.tolist(), documents=[c.text for c in chunks],
                       metadatas=[{"paper_id": c.paper_id, "position": c.position, "n_chunks": c.n_chunks, "gen": 1}
                                  for c in chunks])
        n_chunks += len(chunks)
    return IngestRun(len(rows), time.perf_counter() - started, n_chunks)


def dense_ndcg(index: str, directory: str, embedder_config: EmbedderConfig, split: str = "train",
               limit: int | None = None) -> float:
    """Mean nDCG@10 of the index's nearest chunks, collapsed to papers, over the split's claims.

    Each index is queried by the embedder of the system that built it (fp32 for the naive one).
    """
    data = load_beir(directory, split)
    embedder = Embedder(embedder_config)
    store = Store.open(StoreConfig(path=index), embedder.name, embedder.dim)
    indexed = {chunk_id.rsplit("#", 1)[0] for chunk_id in store.chunk_ids()}
    ids = answerable(data.qrels, indexed)[:limit]
    vectors = embedder.embed([data.queries[q] for q in ids])
    total = 0.0
    for qid, vector in zip(ids, vectors):
        ranked: list[str] = []
        for hit in store.query(vector, k=40):
            if hit.paper_id not in ranked:
                ranked.append(hit.paper_id)
        total += ndcg_at(ranked, data.qrels[qid], 10)
    return total / len(ids)


def answerable(qrels: dict[str, dict[str, int]], indexed: set[str]) -> list[str]:
    """Claims all of whose judged papers are in the index (all of them for the 2,000-paper corpus)."""
    return [q for q, grades in qrels.items() if grades and set(grades) <= indexed]
