"""Synthetic large indexes for retrieval timing, without embedding every paper.

A synthetic paper is a real title and 4–9 real sentences drawn from SciFact
abstracts; its vector is the normalised mean of its sentences' embeddings, which
are computed once and cached in ``benchmarks/.cache``. That keeps the vectors'
geometry realistic (similar text, similar vector) while a 100k-paper index costs
one embedding pass over ~10k sentences instead of 100k abstracts.

>>> import numpy as np
>>> pool = SentencePool(["A b.", "C d."], ["T1"], np.eye(2, dtype=np.float32))
>>> papers, chunks, vectors = synth_batch(pool, np.random.default_rng(0), 0, 3)
>>> len(papers), chunks[0].chunk_id, round(float(np.linalg.norm(vectors[0])), 3)
(3, 'syn-0000000#0', 1.0)
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

import numpy as np

from benchmarks.beir import iter_corpus
from ingest.chunk import split_sentences
from ingest.records import Paper
from ingest.store import Chunk, Store
from models.embedder import Embedder

CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache")
WRITE_BATCH = 2000


@dataclass(frozen=True)
class SentencePool:
    sentences: list[str]
    titles: list[str]
    vectors: np.ndarray  # one unit row per sentence


def sentence_pool(directory: str, embedder: Embedder, abstracts: int) -> SentencePool:
    """Sentences of the first ``abstracts`` abstracts with their (cached) embeddings."""
    rows = list(iter_corpus(directory))[:abstracts]
    sentences = [s for r in rows for s in split_sentences(r["text"]) if len(s) > 20]
    titles = [r["title"] for r in rows if r.get("title")]
    key = hashlib.sha1(f"{embedder.name}|{len(sentences)}|{sentences[0]}|{sentences[-1]}".encode()).hexdigest()[:16]
    path = os.path.join(CACHE, f"sentences-{key}.npy")
    if os.path.exists(path):
        vectors = np.load(path)
    else:
        vectors = embedder.embed(sentences)
        os.makedirs(CACHE, exist_ok=True)
        np.save(path + ".tmp.npy", vectors)
        os.replace(path + ".tmp.npy", path)
    return SentencePool(sentences, titles, vectors)


def synth_batch(pool: SentencePool, rng: np.random.Generator, start: int, n: int):
    """Papers ``start``..``start+n-1``, each with one chunk and its composed vector."""
    papers, chunks, vectors = [], [], np.empty((n, pool.vectors.shape[1]), dtype=np.float32)
    for i in range(n):
        picks = rng.choice(len(pool.sentences), size=min(int(rng.integers(4, 10)), len(pool.sentences)), replace=False)
        title = pool.titles[int(rng.integers(len(pool.titles)))]
        abstract = " ".join(pool.sentences[j] for j in picks)
        pid = f"syn-{start + i:07d}"
        year = int(rng.integers(2015, 2025))
        papers.append(Paper(paper_id=pid, title=title, abstract=abstract, date=f"{year}-01-01",
                            categories=("cs.CL",), sources=("synthetic",)))
        chunks.append(Chunk(pid, 0, 1, f"{title}\n{abstract}"))
        mean = pool.vectors[picks].mean(axis=0)
        vectors[i] = mean / max(float(np.linalg.norm(mean)), 1e-9)
    return papers, chunks, vectors


def grow_index(store: Store, pool: SentencePool, target: int, seed: int = 0) -> float:
    """Add synthetic papers until the index holds ``target`` of them; returns seconds spent writing."""
    have = store.stats().papers
    rng = np.random.default_rng(seed + have)  # a grown index differs from a fresh one only in its tail
    started = time.perf_counter()
    for start in range(have, target, WRITE_BATCH):
        papers, chunks, vectors = synth_batch(pool, rng, start, min(WRITE_BATCH, target - start))
        store.write(papers, chunks, vectors)
    return time.perf_counter() - started
