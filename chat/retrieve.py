"""Hybrid retrieval: dense search in the store plus BM25, fused, collapsed to papers, filtered.

Dense scores are the best cosine of any chunk of a paper; keyword scores are BM25 over
the paper's title and abstract (see ``chat.keyword``), as a share of the best score the
query could reach. The default fusion adds them, 0.6 × cosine + 0.4 × keyword share
(``chat.fusion``); on the SciFact training split it beats reciprocal rank fusion by
0.035 nDCG@10 (benchmarks/RESULTS.md). Filters (year range, category, author substring, arXiv ids)
restrict both sides before fusion, so a filtered search still returns ``k`` papers
when ``k`` papers pass.

>>> import tempfile
>>> from ingest.chunk import chunk_paper
>>> from ingest.records import make_paper
>>> from ingest.store import Store, StoreConfig
>>> from models.embedder import Embedder
>>> embedder = Embedder()
>>> store = Store.open(StoreConfig(path=tempfile.mkdtemp()), embedder.name, embedder.dim)
>>> papers = [make_paper(raw_id="2305.14314", title="QLoRA", abstract="Finetuning quantized LLMs in 4 bits.",
...                      date="2023"),
...           make_paper(raw_id="1706.03762", title="Attention", abstract="Transformers replace recurrence.",
...                      date="2017")]
>>> chunks = [c for p in papers for c in chunk_paper(p)]
>>> store.write(papers, chunks, embedder.embed([c.text for c in chunks]))
>>> retriever = Retriever(store, embedder, keyword_dir=tempfile.mkdtemp())
>>> [h.paper.paper_id for h in retriever.search("4-bit finetuning", k=2)]
['2305.14314', '1706.03762']
>>> [h.paper.paper_id for h in retriever.search("4-bit finetuning", k=2, filters=Filters(year_max=2020))]
['1706.03762']
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from chat.fusion import convex, rrf
from chat.keyword import KeywordConfig, KeywordIndex, top_indices
from ingest.records import Paper, parse_arxiv_id

MODES = ("dense", "bm25", "hybrid")


@dataclass(frozen=True)
class Filters:
    """Restrictions on which papers may be returned; ``None`` fields do not restrict."""

    year_min: int | None = None
    year_max: int | None = None
    category: str | None = None  # "cs.CL", or "cs" for every cs.* category; case-insensitive
    author: str | None = None  # case-insensitive substring of one author's name
    paper_ids: tuple[str, ...] | None = None  # arXiv ids (any version or URL form) or other paper ids

    def __post_init__(self) -> None:
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            raise ValueError(f"year_min {self.year_min} is after year_max {self.year_max}")
        if self.paper_ids is not None:
            if isinstance(self.paper_ids, str):
                raise ValueError("paper_ids must be a list of ids, not one string")
            ids = tuple(parse_arxiv_id(p)[0] or p.strip() for p in self.paper_ids)
            object.__setattr__(self, "paper_ids", ids)


@dataclass(frozen=True)
class RetrievalConfig:
    """How search ranks; the defaults are tuned on the SciFact training split (benchmarks/RESULTS.md)."""

    fusion: str = "convex"  # "convex" (weighted cosine + keyword share) or "rrf" (reciprocal rank fusion)
    rrf_k: float = 60.0  # only for "rrf"
    dense_weight: float = 0.6  # share of the dense side in either fusion
    dense_depth: int = 200  # chunks fetched from the store per query (at least 2 per paper asked for)
    keyword_depth: int = 100  # papers taken from BM25 per query
    passages: int = 2  # best matching chunks kept per hit
    exact_max: int = 200  # a filter passing at most this many papers: their chunks fetched by id and scored exactly
    id_filter_max: int = 2000  # at most this many: a vector query filtered on their ids (100-300 ms at 100k papers)
    recheck_s: float = 2.0  # how often a search re-reads the store's generation (other writers: ingest, a server)
    keyword: KeywordConfig = field(default_factory=KeywordConfig)

    def __post_init__(self) -> None:
        if self.fusion not in ("rrf", "convex") or not 0 <= self.dense_weight <= 1 or self.rrf_k <= 0:
            raise ValueError("fusion must be 'rrf' or 'convex', dense_weight in [0, 1], rrf_k > 0")


@dataclass(frozen=True)
class Hit:
    """One retrieved paper. ``dense``: best raw cosine of its chunks (0 if not scored densely);
    ``keyword``: BM25 score over the best score the query could reach, in [0, 1]."""

    paper: Paper
    score: float
    dense: float
    keyword: float
    passages: tuple[str, ...]
    rank: int


@dataclass(frozen=True)
class Ranked:
    """A ranked paper before its record is fetched (what benchmarks need)."""

    paper_id: str
    score: float
    dense: float | None  # None: not among the dense candidates
    keyword: float
    passages: tuple[str, ...]


class Retriever:
    """Search the papers of ``store``; the keyword index lives in ``keyword_dir`` (default: beside the store)."""

    def __init__(self, store, embedder, config: RetrievalConfig = RetrievalConfig(), keyword_dir: str | None = None):
        self.store, self.embedder, self.config = store, embedder, config
        if keyword_dir is None and not store.config.host:
            keyword_dir = os.path.join(store.config.path, "keyword")
        self.keyword = KeywordIndex.open(store, keyword_dir, config.keyword)
        self._lock = threading.Lock()  # the app searches from several threads; a sync must not interleave
        self._checked = time.monotonic()

    def refresh(self) -> int:
        """Bring the keyword index up to date with the store; returns how many papers changed."""
        with self._lock:
            return self.keyword.sync(self.store)

    def search(self, query: str, k: int = 5, filters: Filters | None = None, mode: str = "hybrid") -> list[Hit]:
        """The ``k`` best papers for ``query``, best first."""
        vector = self.embedder.embed_query(_check(query, mode))
        ranked = self._rank(query, vector, k, filters, mode)
        missing = [r.paper_id for r in ranked if r.dense is None]
        extra = self._dense_for(vector, missing) if missing else {}
        papers = self.store.get_papers([r.paper_id for r in ranked])
        hits = []
        for r in ranked:
            if r.paper_id not in papers:
                continue  # removed from the store since the keyword index last synced
            dense, passages = (r.dense, r.passages) if r.dense is not None else extra.get(r.paper_id, (0.0, ()))
            hits.append(Hit(papers[r.paper_id], r.score, dense, r.keyword, passages, len(hits) + 1))
        return hits

    def rank(self, query: str, depth: int, filters: Filters | None = None, mode: str = "hybrid") -> list[Ranked]:
        """The ``depth`` best paper ids with their scores, without fetching the papers (for benchmarks)."""
        vector = self.embedder.embed_query(_check(query, mode)) if mode != "bm25" else None
        return self._rank(query, vector, depth, filters, mode)

    def _rank(self, query: str, vector, depth: int, filters: Filters | None, mode: str) -> list[Ranked]:
        cfg = self.config
        with self._lock:
            if time.monotonic() - self._checked >= cfg.recheck_s:
                self.store.reload_meta()  # another process (an ingest, a client of the same server) may have written
                self._checked = time.monotonic()
            if self.store.meta.generation != self.keyword.generation:
                self.keyword.sync(self.store)  # the store was written to since the last search
            papers = self.keyword.papers
            allowed = papers.allowed(**vars(filters)) if filters else None
            if len(papers.ids) == 0 or (allowed is not None and not allowed.any()) or depth <= 0:
                return []
            scores, best = self.keyword.scores(query, cfg.keyword)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        shares = scores / best if best > 0 else scores  # BM25 as a share of what the query could score, in [0, 1]
        by_keyword = [papers.ids[i] for i in top_indices(shares, max(cfg.keyword_depth, depth)) if shares[i] > 0]
        dense = self._dense(vector, papers, allowed, max(cfg.dense_depth, 2 * depth)) if mode != "bm25" else {}
        keyword = {pid: float(shares[papers.position[pid]]) for pid in (*by_keyword, *dense) if pid in papers.position}
        fused = self._fuse(mode, {pid: v[0] for pid, v in dense.items()}, keyword, by_keyword)
        order = sorted(fused, key=lambda pid: -fused[pid])[:depth]
        return [Ranked(pid, fused[pid], dense[pid][0] if pid in dense else None, keyword.get(pid, 0.0),
                       dense[pid][1] if pid in dense else ()) for pid in order]

    def _fuse(self, mode: str, cos: dict[str, float], keyword: dict[str, float], by_keyword: list[str]) -> dict:
        if mode == "dense":
            return cos
        if mode == "bm25":
            return {pid: keyword[pid] for pid in by_keyword}
        w = self.config.dense_weight
        if self.config.fusion == "convex":
            return convex(cos, keyword, w)
        by_cos = sorted(cos, key=lambda pid: -cos[pid])
        return rrf([by_cos, by_keyword], [2 * w, 2 * (1 - w)], self.config.rrf_k)

    def _dense(self, vector, papers, allowed: np.ndarray | None, n_chunks: int) -> dict[str, tuple[float, tuple]]:
        """Best cosine and best chunk texts per paper among the ``n_chunks`` nearest chunks that pass."""
        if allowed is None:
            hits = self.store.query(vector, n_chunks)
        elif (passing := int(allowed.sum())) <= self.config.id_filter_max:
            ids = [papers.ids[i] for i in np.flatnonzero(allowed)]
            hits = (self.store.score_chunks(vector, ids) if passing <= self.config.exact_max  # narrow: exact
                    else self.store.query(vector, n_chunks, paper_ids=ids))
        else:  # a broad filter: over-fetch in proportion to what it removes, then drop what fails it
            share = float(allowed.mean())
            hits = [h for h in self.store.query(vector, min(int(n_chunks / share) + 1, 20 * n_chunks))
                    if h.paper_id in papers.position and allowed[papers.position[h.paper_id]]]
        return _collapse(hits, self.config.passages)

    def _dense_for(self, vector, paper_ids: Sequence[str]) -> dict[str, tuple[float, tuple[str, ...]]]:
        """Dense scores and passages for papers that only the keyword side found."""
        return _collapse(self.store.score_chunks(vector, paper_ids), self.config.passages)


def _collapse(hits, passages: int) -> dict[str, tuple[float, tuple[str, ...]]]:
    """Chunk hits (best first) -> paper id: (best cosine, up to ``passages`` chunk texts)."""
    best: dict[str, tuple[float, tuple[str, ...]]] = {}
    for hit in sorted(hits, key=lambda h: -h.score):
        score, texts = best.get(hit.paper_id, (hit.score, ()))
        if len(texts) < passages:
            best[hit.paper_id] = (score, texts + (hit.text,))
    return best


def _check(query: str, mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not query.strip():
        raise ValueError("the query is empty")
    return query


