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

    def describe(self) -> str:
        """The active restrictions in words, e.g. 'year 2030–2030; category cs.CL'.

        >>> Filters(year_min=2021, author="dettmers").describe()
        'year 2021 or later; author contains “dettmers”'
        """
        parts = []
        if self.year_min is not None or self.year_max is not None:
            low, high = self.year_min, self.year_max
            parts.append(f"year {low}\u2013{high}" if low is not None and high is not None
                         else f"year {low} or later" if low is not None else f"year {high} or earlier")
        if self.category:
            parts.append(f"category {self.category}")
        if self.author:
            parts.append(f"author contains \u201c{self.author}\u201d")
        if self.paper_ids is not None:
            more = len(self.paper_ids) - 5
            shown = ", ".join(self.paper_ids[:5]) + (f" and {more} more" if more > 0 else "")
            parts.append(f"paper ids {shown}" if self.paper_ids else "no paper ids")
        return "; ".join(parts)


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
    overfetch_max: int = 1500  # a broader filter: at most this many nearest chunk ids fetched, those that pass kept
    search_width: int = 400  # the vector index searches this wide (HNSW ef): recall@10 vs exact ≥ 0.98 (RESULTS.md)
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
    chunk_ids: tuple[str, ...]  # its best chunks (texts are fetched for the papers a search returns only)


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
        best = {r.paper_id: (r.dense, r.chunk_ids) if r.dense is not None else extra.get(r.paper_id, (0.0, ()))
                for r in ranked}
        texts = self.store.chunk_texts([c for _, ids in best.values() for c in ids])
        papers = self.store.get_papers([r.paper_id for r in ranked])
        hits = []
        for r in ranked:
            if r.paper_id not in papers:
                continue  # removed from the store since the keyword index last synced
            dense, ids = best[r.paper_id]
            hits.append(Hit(papers[r.paper_id], r.score, dense, r.keyword, tuple(texts[c] for c in ids if c in texts),
                            len(hits) + 1))
        return hits

    def matching(self, filters: Filters | None = None) -> int:
        """How many indexed papers pass ``filters`` (every paper when None): tells 'nothing matches' apart."""
        with self._lock:
            papers = self.keyword.papers
            allowed = papers.allowed(**vars(filters)) if filters else None
            return len(papers.ids) if allowed is None else int(allowed.sum())

    def document_frequency(self, term: str) -> int:
        """How many indexed papers contain ``term`` (an index term: lower-cased, stemmed; see chat.text)."""
        with self._lock:
            found = self.keyword.postings.slice(term)
            return 0 if found is None else len(found[0])

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
        dense = self._dense(vector, papers, allowed, max(cfg.dense_depth, 2 * depth),
                            by_keyword[:cfg.keyword_depth]) if mode != "bm25" else {}
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

    def _dense(self, vector, papers, allowed: np.ndarray | None, n_chunks: int,
               candidates: Sequence[str] = ()) -> dict[str, tuple[float, tuple[str, ...]]]:
        """Best cosine and best chunk ids per paper among the ``n_chunks`` nearest chunks that pass.

        Ids and scores only (texts come later, for the papers returned), and no path asks Chroma
        to filter: a filtered vector query scans every chunk's metadata (100-300 ms at 100k papers).
        """
        cfg = self.config
        if allowed is None:  # Chroma searches max(ef_search, k) wide: asking for more widens the search
            return _collapse(self.store.nearest(vector, max(n_chunks, cfg.search_width))[:n_chunks], cfg.passages)
        if (passing := int(allowed.sum())) <= cfg.exact_max:  # narrow: every chunk of every passing paper, exactly
            return self._dense_for(vector, [papers.ids[i] for i in np.flatnonzero(allowed)])
        # broad: the nearest chunk ids, over-fetched to find about half of n_chunks that pass (an HNSW search for
        # the k nearest costs about k: 4,000 took 80-190 ms at 100k papers), those that pass kept
        want = max(min(int(n_chunks / 2 * len(allowed) / passing) + 1, cfg.overfetch_max), cfg.search_width)
        kept = []
        for chunk_id, score in self.store.nearest(vector, want):
            pos = papers.position.get(chunk_id.rsplit("#", 1)[0])
            if pos is not None and allowed[pos]:
                kept.append((chunk_id, score))
                if len(kept) == n_chunks:
                    break
        dense = _collapse(kept, cfg.passages)
        if len(kept) < n_chunks // 4:  # a narrow-ish filter the over-fetch reached too little of: score the
            rest = [pid for pid in candidates if pid not in dense]  # keyword side's passing papers exactly
            dense.update(self._dense_for(vector, rest) if rest else {})
        return dense

    def _dense_for(self, vector, paper_ids: Sequence[str]) -> dict[str, tuple[float, tuple[str, ...]]]:
        """Exact dense scores and best chunk ids for these papers (every chunk of each scored)."""
        return _collapse(self.store.nearest_among(vector, paper_ids), self.config.passages)


def _collapse(hits: Sequence[tuple[str, float]], passages: int) -> dict[str, tuple[float, tuple[str, ...]]]:
    """(chunk id, cosine) pairs, best first -> paper id: (best cosine, up to ``passages`` chunk ids)."""
    best: dict[str, tuple[float, tuple[str, ...]]] = {}
    for chunk_id, score in hits:
        pid = chunk_id.rsplit("#", 1)[0]
        first, ids = best.get(pid, (score, ()))
        if len(ids) < passages:
            best[pid] = (first, ids + (chunk_id,))
    return best


def _check(query: str, mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not query.strip():
        raise ValueError("the query is empty")
    return query


