"""All storage: the one module that imports chromadb.

An index is three Chroma collections: ``<name>_papers`` (one row per paper, the
abstract as document, the first chunk's vector), ``<name>_chunks`` (the searchable
chunks) and ``<name>_meta`` (one row: embedding model, dimension, sources, write
generation). The same code runs on a local directory or on a Chroma server.

>>> import tempfile
>>> from ingest.records import make_paper
>>> store = Store.open(StoreConfig(path=tempfile.mkdtemp()), model="m", dim=2)
>>> p = make_paper(raw_id="2305.14314", title="QLoRA", abstract="Finetune in 4 bits.")
>>> store.write([p], [Chunk(p.paper_id, 0, 1, "QLoRA. Finetune in 4 bits.")], [[1.0, 0.0]])
>>> store.query([1.0, 0.0], k=1)[0].paper_id, store.get_papers(["2305.14314"])["2305.14314"].title
('2305.14314', 'QLoRA')
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ingest.records import Paper
from models.errors import IndexMismatchError, PaperChatError, UnavailableError

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
import chromadb  # noqa: E402 - telemetry must be off before import
from chromadb.config import Settings  # noqa: E402

_PAGE = 2000
_FIRST_CHUNKS = 4  # chunk ids tried per paper before its n_chunks is known (an arXiv abstract: 2-4 chunks)
_LIST_FIELDS = ("authors", "categories", "sources")


@dataclass(frozen=True)
class StoreConfig:
    """Where the index lives: a directory, or a Chroma server when ``host`` is set."""

    path: str = "index"
    host: str | None = None
    port: int = 8000
    name: str = "paperchat"


@dataclass(frozen=True)
class Chunk:
    """A piece of one paper's text; ``chunk_id`` is stable so re-writes upsert in place."""

    paper_id: str
    position: int
    n_chunks: int
    text: str

    @property
    def chunk_id(self) -> str:
        return f"{self.paper_id}#{self.position}"


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: str
    paper_id: str
    position: int
    text: str
    score: float  # cosine similarity


@dataclass(frozen=True)
class IndexMeta:
    model: str
    dim: int
    generation: int
    sources: tuple[str, ...]
    chunker: str = ""  # how the chunks were cut (``ChunkerConfig.fingerprint``); "" in indexes made before it


@dataclass(frozen=True)
class IndexStats:
    location: str
    papers: int
    chunks: int
    model: str
    dim: int
    sources: tuple[str, ...]
    chunker: str = ""


class Store:
    """A paper index in Chroma. Open it with :meth:`open`."""

    def __init__(self, client, config: StoreConfig, meta: IndexMeta):
        self._client, self.config, self.meta = client, config, meta
        space = {"hnsw:space": "cosine"}
        self._papers = client.get_or_create_collection(f"{config.name}_papers", metadata=space, embedding_function=None)
        self._chunks = client.get_or_create_collection(f"{config.name}_chunks", metadata=space, embedding_function=None)
        self._meta = client.get_or_create_collection(f"{config.name}_meta", embedding_function=None)
        self._max_batch = max(1, min(client.get_max_batch_size(), 5000))

    @classmethod
    def open(cls, config: StoreConfig, model: str, dim: int) -> "Store":
        """Open or create an index for ``model``; a different model is an :class:`IndexMismatchError`."""
        client = _client(config)
        probe = cls(client, config, IndexMeta(model, dim, 0, ()))
        stored = probe._read_meta()
        if stored is None:
            probe._write_meta(probe.meta)
            return probe
        if (stored.model, stored.dim) != (model, dim):
            raise IndexMismatchError(
                f"The index at {probe.location} was built with {stored.model} ({stored.dim} dimensions) "
                f"but was opened with {model} ({dim} dimensions). Use the same model, or another --index.")
        probe.meta = stored
        return probe

    @classmethod
    def read_meta(cls, config: StoreConfig) -> IndexMeta | None:
        """The stored model and dimension without opening for writing (None for a new index)."""
        return cls(_client(config), config, IndexMeta("", 0, 0, ()))._read_meta()

    @classmethod
    def open_existing(cls, config: StoreConfig) -> "Store":
        """Open an index for reading with whatever model built it; creates nothing.

        Raises :class:`PaperChatError` when there is no index at ``config``.
        """
        where = f"{config.host}:{config.port}" if config.host else os.path.abspath(config.path)
        if not config.host and not os.path.isfile(os.path.join(config.path, "chroma.sqlite3")):
            raise PaperChatError(f"There is no index at {where}: build one with python -m ingest SOURCE --index DIR.")
        client = _client(config)
        if f"{config.name}_meta" not in {c.name for c in client.list_collections()}:
            raise PaperChatError(f"There is no index named {config.name!r} at {where}.")
        probe = cls(client, config, IndexMeta("", 0, 0, ()))
        meta = probe._read_meta()
        if meta is None:
            raise PaperChatError(f"The index at {where} is incomplete (no model recorded); ingest into it again.")
        probe.meta = meta
        return probe

    def reload_meta(self) -> IndexMeta:
        """Re-read the model, sources and write generation, which another process may have moved on."""
        self.meta = self._read_meta() or self.meta
        return self.meta

    @property
    def location(self) -> str:
        return f"chroma://{self.config.host}:{self.config.port}" if self.config.host else os.path.abspath(self.config.path)

    # -- writing -------------------------------------------------------------
    def write(self, papers: Sequence[Paper], chunks: Sequence[Chunk], vectors, remove: Sequence[str] = ()) -> None:
        """Store papers with their chunks and chunk vectors; ``remove`` lists paper ids to drop.

        The order makes every prefix of a write repairable by running the same ingest
        again: old chunks of the written papers go first, then the new chunks, then the
        paper rows (so a row whose content hash is current always has all its chunks),
        then the removed papers' chunks and last their rows (so a removed paper is
        either still findable by its fingerprint or completely gone).
        """
        generation = self.meta.generation + 1
        written = list(dict.fromkeys(p.paper_id for p in papers))
        self._delete_chunks_of(written)
        vectors = [list(map(float, v)) for v in vectors]
        first_vector = {}
        for chunk, vector in zip(chunks, vectors):
            first_vector.setdefault(chunk.paper_id, vector)
        for start in range(0, len(chunks), self._max_batch):
            part = chunks[start:start + self._max_batch]
            self._chunks.upsert(ids=[c.chunk_id for c in part], documents=[c.text for c in part],
                                embeddings=vectors[start:start + self._max_batch],
                                metadatas=[_chunk_meta(c, generation) for c in part])
        for start in range(0, len(papers), self._max_batch):
            part = papers[start:start + self._max_batch]
            self._papers.upsert(ids=[p.paper_id for p in part], documents=[p.abstract for p in part],
                                embeddings=[first_vector[p.paper_id] for p in part],
                                metadatas=[_paper_meta(p) for p in part])
        kept = set(written)
        removed = [i for i in dict.fromkeys(remove) if i not in kept]
        if removed:
            self._delete_chunks_of(removed)
            for start in range(0, len(removed), _PAGE):
                self._papers.delete(ids=removed[start:start + _PAGE])
        sources = tuple(sorted(set(self.meta.sources).union(s for p in papers for s in p.sources)))
        self._write_meta(replace(self.meta, generation=generation, sources=sources))

    def _delete_chunks_of(self, paper_ids: Sequence[str]) -> None:
        for start in range(0, len(paper_ids), _PAGE):
            self._chunks.delete(where={"paper_id": {"$in": list(paper_ids[start:start + _PAGE])}})

    def add_sources(self, sources: Sequence[str]) -> None:
        merged = tuple(sorted(set(self.meta.sources).union(sources)))
        if merged != self.meta.sources:
            self._write_meta(replace(self.meta, sources=merged))

    def update_metadata(self, papers: Sequence[Paper]) -> None:
        """Rewrite the rows of existing ``papers`` where only provenance changed (their text and chunks did not)."""
        for start in range(0, len(papers), self._max_batch):
            part = papers[start:start + self._max_batch]
            self._papers.update(ids=[p.paper_id for p in part], metadatas=[_paper_meta(p) for p in part])
        self._write_meta(replace(self.meta, generation=self.meta.generation + 1))

    def remove_sources(self, sources: Sequence[str]) -> None:
        """Drop ``sources`` from the index's source list (after their papers were removed)."""
        kept = tuple(s for s in self.meta.sources if s not in set(sources))
        if kept != self.meta.sources:
            self._write_meta(replace(self.meta, sources=kept))

    def chunk_counts(self) -> dict[str, int]:
        """Chunks stored per paper id, read from chunk metadata only (no text, no vectors)."""
        counts: dict[str, int] = {}
        for _, _, metas in self._pages(self._chunks, None, ["metadatas"]):
            for meta in metas:
                counts[meta["paper_id"]] = counts.get(meta["paper_id"], 0) + 1
        return counts

    def set_chunker(self, fingerprint: str) -> None:
        """Record how every chunk in the index was cut (after a first ingest or a re-chunk)."""
        if fingerprint != self.meta.chunker:
            self._write_meta(replace(self.meta, chunker=fingerprint))

    # -- reading -------------------------------------------------------------
    def get_papers(self, ids: Sequence[str]) -> dict[str, Paper]:
        found: dict[str, Paper] = {}
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), _PAGE):
            got = self._papers.get(ids=ids[start:start + _PAGE], include=["documents", "metadatas"])
            for pid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                found[pid] = _paper_from(pid, doc, meta)
        return found

    def find_by_fingerprint(self, fingerprints: Sequence[str]) -> dict[str, Paper]:
        """One paper per fingerprint found (the smallest id where several share an abstract)."""
        return {fp: papers[0] for fp, papers in self.papers_by_fingerprint(fingerprints).items()}

    def papers_by_fingerprint(self, fingerprints: Sequence[str]) -> dict[str, list[Paper]]:
        """Every paper whose abstract has one of these fingerprints, sorted by id, keyed by fingerprint."""
        found: dict[str, list[Paper]] = {}
        fps = list(dict.fromkeys(fingerprints))
        for start in range(0, len(fps), _PAGE):
            got = self._papers.get(where={"fingerprint": {"$in": fps[start:start + _PAGE]}},
                                   include=["documents", "metadatas"])
            for pid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                found.setdefault(meta["fingerprint"], []).append(_paper_from(pid, doc, meta))
        return {fp: sorted(papers, key=lambda p: p.paper_id) for fp, papers in found.items()}

    def paper_ids(self) -> list[str]:
        """Every paper id, read before a pass that rewrites rows (paging by offset would shift under it)."""
        return [i for ids, _, _ in self._pages(self._papers, None, []) for i in ids]

    def iter_papers(self) -> Iterator[Paper]:
        for ids, docs, metas in self._pages(self._papers, None, ["documents", "metadatas"]):
            yield from (_paper_from(i, d, m) for i, d, m in zip(ids, docs, metas))

    def iter_chunks(self, since_generation: int = 0) -> Iterator[tuple[str, str, str]]:
        """(chunk_id, paper_id, text) for chunks written after ``since_generation``."""
        where = {"gen": {"$gt": since_generation}} if since_generation else None
        for ids, docs, metas in self._pages(self._chunks, where, ["documents", "metadatas"]):
            yield from ((i, m["paper_id"], d) for i, d, m in zip(ids, docs, metas))

    def chunk_ids(self) -> set[str]:
        return {i for ids, _, _ in self._pages(self._chunks, None, []) for i in ids}

    def query(self, vector, k: int, paper_ids: Sequence[str] | None = None) -> list[ChunkHit]:
        """Nearest chunks by cosine similarity, optionally only among ``paper_ids``."""
        if k <= 0 or (paper_ids is not None and not paper_ids):
            return []
        where = {"paper_id": {"$in": list(paper_ids)}} if paper_ids is not None else None
        got = self._chunks.query(query_embeddings=[list(map(float, vector))], n_results=k, where=where,
                                 include=["documents", "metadatas", "distances"])
        return [ChunkHit(i, m["paper_id"], int(m["position"]), d, 1.0 - float(dist))
                for i, d, m, dist in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])]

    def score_chunks(self, vector, paper_ids: Sequence[str]) -> list[ChunkHit]:
        """Every chunk of ``paper_ids`` with its exact cosine to ``vector``, best first.

        Chunks are fetched by id (``paper#0``, ``paper#1``, … up to the ``n_chunks`` the
        first ones record), so the cost follows the number of papers asked for, not the
        size of the index: a vector query filtered on paper ids scans metadata and took
        100-290 ms at 100k papers (benchmarks/RESULTS.md).
        """
        ids = list(dict.fromkeys(paper_ids))
        rows = self._chunk_rows([f"{pid}#{i}" for pid in ids for i in range(_FIRST_CHUNKS)])
        counts = {m["paper_id"]: int(m.get("n_chunks", 1)) for _, _, m, _ in rows}
        rest = [f"{pid}#{i}" for pid, n in counts.items() for i in range(_FIRST_CHUNKS, n)]
        rows += self._chunk_rows(rest) if rest else []
        if not rows:
            return []
        matrix = np.asarray([r[3] for r in rows], dtype=np.float32)
        query = np.asarray(vector, dtype=np.float32)
        cosines = matrix @ query / np.maximum(np.linalg.norm(matrix, axis=1) * np.linalg.norm(query), 1e-12)
        hits = [ChunkHit(cid, m["paper_id"], int(m["position"]), doc, float(c))
                for (cid, doc, m, _), c in zip(rows, cosines)]
        return sorted(hits, key=lambda h: -h.score)

    def _chunk_rows(self, ids: Sequence[str]) -> list[tuple[str, str, dict, object]]:
        rows = []
        for start in range(0, len(ids), _PAGE):
            got = self._chunks.get(ids=list(ids[start:start + _PAGE]),
                                   include=["documents", "metadatas", "embeddings"])
            rows += zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"])
        return rows

    def stats(self) -> IndexStats:
        return IndexStats(self.location, self._papers.count(), self._chunks.count(),
                          self.meta.model, self.meta.dim, self.meta.sources, self.meta.chunker)

    def _pages(self, collection, where, include) -> Iterator[tuple[list, list, list]]:
        offset = 0
        while True:
            got = collection.get(where=where, include=include, limit=_PAGE, offset=offset)
            if not got["ids"]:
                return
            n = len(got["ids"])
            yield got["ids"], got.get("documents") or [None] * n, got.get("metadatas") or [None] * n
            offset += n

    def _read_meta(self) -> IndexMeta | None:
        got = self._meta.get(ids=["meta"], include=["metadatas"])
        if not got["ids"]:
            return None
        m = got["metadatas"][0]
        return IndexMeta(m["model"], int(m["dim"]), int(m["generation"]), tuple(json.loads(m["sources"])),
                         m.get("chunker", ""))

    def _write_meta(self, meta: IndexMeta) -> None:
        self._meta.upsert(ids=["meta"], embeddings=[[0.0]], metadatas=[{
            "model": meta.model, "dim": meta.dim, "generation": meta.generation,
            "sources": json.dumps(list(meta.sources)), "chunker": meta.chunker}])
        self.meta = meta


def _client(config: StoreConfig):
    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if config.host:
        try:
            return chromadb.HttpClient(host=config.host, port=config.port, settings=settings)
        except Exception as exc:  # chromadb raises several types for "cannot connect"
            raise UnavailableError(f"Cannot reach the Chroma server at {config.host}:{config.port}: {exc}") from exc
    os.makedirs(config.path, exist_ok=True)
    return chromadb.PersistentClient(path=config.path, settings=settings)


def _chunk_meta(chunk: Chunk, generation: int) -> dict:
    return {"paper_id": chunk.paper_id, "position": chunk.position, "n_chunks": chunk.n_chunks, "gen": generation}


def _paper_meta(paper: Paper) -> dict:
    meta = {"title": paper.title, "date": paper.date, "url": paper.url, "version": paper.version,
            "arxiv_id": paper.arxiv_id, "fingerprint": paper.fingerprint, "content_hash": paper.content_hash,
            "year": paper.year if paper.year is not None else -1}
    meta.update({name: json.dumps(list(getattr(paper, name))) for name in _LIST_FIELDS})
    return meta


def _paper_from(paper_id: str, abstract: str, meta: dict) -> Paper:
    lists = {name: tuple(json.loads(meta.get(name) or "[]")) for name in _LIST_FIELDS}
    return Paper(paper_id=paper_id, title=meta.get("title", ""), abstract=abstract or "", date=meta.get("date", ""),
                 url=meta.get("url", ""), version=meta.get("version", ""), arxiv_id=meta.get("arxiv_id", ""), **lists)
