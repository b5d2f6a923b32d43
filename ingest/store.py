"""All storage: the one module that imports chromadb.

An index is three Chroma collections: ``<name>_papers`` (one row per paper, the
abstract as document, the first chunk's vector), ``<name>_chunks`` (the searchable
chunks) and ``<name>_meta`` (one row: embedding model, dimension, sources, write
generation). The same code runs on a local directory or on a Chroma server.

Many processes, one index. Every write holds the index's writer lock (``ingest.lock``: a
lock file in the directory; on a server, a lease row in ``<name>_meta``), so there is one
writer at a time and a second one waits or, asked not to, says who holds it. Readers never
wait for a writer: Chroma keeps the vector index in each process's memory and never
re-reads it, so a reader that sees a new write generation (:meth:`Store.reload_meta`) or a
vector it does not know reopens its Chroma client, and a writer that takes the lock after
another process reopens before it writes. A Chroma server is one process owning the
vectors: its clients always see each other's writes and need no reopening.

>>> import tempfile
>>> from ingest.records import make_paper
>>> store = Store.open(StoreConfig(path=tempfile.mkdtemp()), model="m", dim=2)
>>> p = make_paper(raw_id="2305.14314", title="QLoRA", abstract="Finetune in 4 bits.")
>>> store.write([p], [Chunk(p.paper_id, 0, 1, "QLoRA. Finetune in 4 bits.")], [[1.0, 0.0]])
>>> store.query([1.0, 0.0], k=1)[0].paper_id, store.get_papers(["2305.14314"])["2305.14314"].title
('2305.14314', 'QLoRA')
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from ingest.lock import FileMutex, Holder, ServerLease, WriterLock
from ingest.records import Paper
from models.errors import IndexMismatchError, PaperChatError, UnavailableError

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
import chromadb  # noqa: E402 - telemetry must be off before import
from chromadb.api.shared_system_client import SharedSystemClient  # noqa: E402
from chromadb.config import Settings  # noqa: E402
from chromadb.errors import ChromaError  # noqa: E402

_PAGE = 2000
_PROBE = 6  # chunk ids fetched per paper and round by nearest_among (an arXiv abstract: ~5 chunks)
_LIST_FIELDS = ("authors", "categories", "sources")
# A reader whose in-memory vectors lag another process's writes gets these from Chroma
# ("Error finding id"), or AttributeError from a client another thread just replaced; a
# client of a server that was restarted gets NotFoundError for the collections it knew.
_STALE = (ChromaError, AttributeError)


def _split_id(chunk_id: str) -> tuple[str, int]:
    """'2305.14314#2' -> ('2305.14314', 2): chunk ids are the paper id and the chunk's position."""
    paper_id, position = chunk_id.rsplit("#", 1)
    return paper_id, int(position)


def _reading(method):
    """Run a read; when Chroma fails because this process's segments are stale, reopen and retry once."""
    @functools.wraps(method)
    def read(self, *args, **kwargs):
        epoch = self._conn.epoch
        try:
            return method(self, *args, **kwargs)
        except _STALE:
            if not self._conn.recover(epoch):
                raise
            return method(self, *args, **kwargs)
    return read


def _writing(method):
    """Run a change under the writer lock and the segment lock, from the index's current meta."""
    @functools.wraps(method)
    def write(self, *args, **kwargs):
        with self.writing(), self._conn.segments.hold():
            self.meta = self._read_meta() or self.meta  # another writer may have moved it on before we held the lock
            self._conn.renew()
            return method(self, *args, **kwargs)
    return write


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
    """A paper index in Chroma. Open it with :meth:`open` or :meth:`open_existing`."""

    def __init__(self, conn: "_Connection", config: StoreConfig, meta: IndexMeta):
        self._conn, self.config, self.meta = conn, config, meta
        self._max_batch = conn.max_batch

    @property
    def _papers(self):
        return self._conn.collection(f"{self.config.name}_papers")

    @property
    def _chunks(self):
        return self._conn.collection(f"{self.config.name}_chunks")

    @property
    def _meta(self):
        return self._conn.collection(f"{self.config.name}_meta")

    @classmethod
    def open(cls, config: StoreConfig, model: str, dim: int) -> "Store":
        """Open or create an index for ``model``; a different model is an :class:`IndexMismatchError`."""
        probe = cls(_connection(config), config, IndexMeta(model, dim, 0, ()))
        stored = probe._read_meta()
        if stored is None:
            probe._create(probe.meta)
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
        return cls(_connection(config), config, IndexMeta("", 0, 0, ()))._read_meta()

    @classmethod
    def open_existing(cls, config: StoreConfig) -> "Store":
        """Open an index for reading with whatever model built it; creates nothing.

        Raises :class:`PaperChatError` when there is no index at ``config``.
        """
        where = f"{config.host}:{config.port}" if config.host else os.path.abspath(config.path)
        if not config.host and not os.path.isfile(os.path.join(config.path, "chroma.sqlite3")):
            raise PaperChatError(f"There is no index at {where}: build one with python -m ingest SOURCE --index DIR.")
        conn = _connection(config)
        if f"{config.name}_meta" not in conn.collection_names():
            raise PaperChatError(f"There is no index named {config.name!r} at {where}.")
        probe = cls(conn, config, IndexMeta("", 0, 0, ()))
        meta = probe._read_meta()
        if meta is None:
            raise PaperChatError(f"The index at {where} is incomplete (no model recorded); ingest into it again.")
        probe.meta = meta
        return probe

    @classmethod
    def writer(cls, config: StoreConfig, command: str | None = None, wait: bool = True,
               on_wait: Callable[[Holder | None], None] | None = None,
               on_takeover: Callable[[Holder], None] | None = None):
        """Hold the writer lock of the index at ``config`` (before opening it, even before it exists).

        ``wait=False`` raises :class:`ingest.lock.IndexBusyError` naming the holder instead of
        waiting; ``on_wait(holder)`` is called when waiting starts (and when the holder changes);
        ``on_takeover(holder)`` when the lock was left by a writer that died holding it. Every
        write takes the lock anyway; holding it across a run keeps other writers out between
        batches and lets a caller choose between waiting and failing.
        """
        return _connection(config).hold_writer(command, wait, on_wait, on_takeover)

    def writing(self, command: str | None = None, wait: bool = True,
                on_wait: Callable[[Holder | None], None] | None = None):
        """:meth:`writer` for this store's index."""
        return self._conn.hold_writer(command, wait, on_wait)

    def writer_holder(self) -> Holder | None:
        """Who holds the writer lock now (None when nobody does)."""
        return self._conn.holder()

    def reload_meta(self) -> IndexMeta:
        """Re-read the model, sources and write generation, which another process may have moved on.

        A new generation written by another process means this process's vector segments are
        stale: the Chroma client is reopened (every store of this process on the index follows).
        Reloading a large index's vectors takes a while, so during a long ingest by another
        process they are reloaded at most once per ten reload times; until then this store
        keeps reporting the generation its vectors hold, so nothing searches papers it cannot score.
        """
        meta = self._read_meta()
        if meta is not None and self._conn.behind(meta.generation):
            if not self._conn.due():
                return self.meta
            self._conn.reopen()
            meta = self._read_meta() or meta
        self.meta = meta or self.meta
        return self.meta

    @property
    def location(self) -> str:
        return f"chroma://{self.config.host}:{self.config.port}" if self.config.host else os.path.abspath(self.config.path)

    # -- writing -------------------------------------------------------------
    @_writing
    def _create(self, meta: IndexMeta) -> None:
        if self._read_meta() is None:  # nobody created it while we waited for the lock
            self._write_meta(meta)
        elif (self.meta.model, self.meta.dim) != (meta.model, meta.dim):
            raise IndexMismatchError(f"The index at {self.location} was just created with {self.meta.model} "
                                     f"({self.meta.dim} dimensions), not {meta.model} ({meta.dim} dimensions).")

    @_writing
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

    @_writing
    def add_sources(self, sources: Sequence[str]) -> None:
        merged = tuple(sorted(set(self.meta.sources).union(sources)))
        if merged != self.meta.sources:
            self._write_meta(replace(self.meta, sources=merged))

    @_writing
    def update_metadata(self, papers: Sequence[Paper]) -> None:
        """Rewrite the rows of existing ``papers`` where only provenance changed (their text and chunks did not)."""
        for start in range(0, len(papers), self._max_batch):
            part = papers[start:start + self._max_batch]
            self._papers.update(ids=[p.paper_id for p in part], metadatas=[_paper_meta(p) for p in part])
        self._write_meta(replace(self.meta, generation=self.meta.generation + 1))

    @_writing
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

    @_writing
    def set_chunker(self, fingerprint: str) -> None:
        """Record how every chunk in the index was cut (after a first ingest or a re-chunk)."""
        if fingerprint != self.meta.chunker:
            self._write_meta(replace(self.meta, chunker=fingerprint))

    @_writing
    def restore_vectors(self, kind: str, ids: Sequence[str], vectors) -> None:
        """Give rows of ``kind`` ("chunks" or "papers") that lost their vectors new ones; text and
        metadata stay. A new generation tells readers to reload their segments."""
        collection = self._collection(kind)
        generation = self.meta.generation + 1
        vectors = [list(map(float, v)) for v in vectors]
        for start in range(0, len(ids), self._max_batch):
            part = list(ids[start:start + self._max_batch])
            got = collection.get(ids=part, include=["documents", "metadatas"])
            found = {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}
            keep = [i for i in part if i in found]
            metas = [{**found[i][1], "gen": generation} if kind == "chunks" else found[i][1] for i in keep]
            by_id = dict(zip(part, vectors[start:start + self._max_batch]))
            collection.upsert(ids=keep, documents=[found[i][0] for i in keep], metadatas=metas,
                              embeddings=[by_id[i] for i in keep])
        self._write_meta(replace(self.meta, generation=generation))

    @_writing
    def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Drop chunk rows by id (chunks left behind by a paper that is gone)."""
        for start in range(0, len(chunk_ids), _PAGE):
            self._chunks.delete(ids=list(chunk_ids[start:start + _PAGE]))
        self._write_meta(replace(self.meta, generation=self.meta.generation + 1))

    def reopen(self) -> None:
        """Reload the vector segments from disk now (every store of this process on the index follows)."""
        self._conn.reopen()

    # -- reading -------------------------------------------------------------
    @_reading
    def get_papers(self, ids: Sequence[str]) -> dict[str, Paper]:
        found: dict[str, Paper] = {}
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), _PAGE):
            got = self._papers.get(ids=ids[start:start + _PAGE], include=["documents", "metadatas"])
            for pid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                if meta is not None:
                    found[pid] = _paper_from(pid, doc, meta)
        return found

    def find_by_fingerprint(self, fingerprints: Sequence[str]) -> dict[str, Paper]:
        """One paper per fingerprint found (the smallest id where several share an abstract)."""
        return {fp: papers[0] for fp, papers in self.papers_by_fingerprint(fingerprints).items()}

    @_reading
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

    @_reading
    def query(self, vector, k: int, paper_ids: Sequence[str] | None = None) -> list[ChunkHit]:
        """Nearest chunks by cosine similarity, optionally only among ``paper_ids``."""
        if k <= 0 or (paper_ids is not None and not paper_ids):
            return []
        where = {"paper_id": {"$in": list(paper_ids)}} if paper_ids is not None else None
        got = self._chunks.query(query_embeddings=[list(map(float, vector))], n_results=k, where=where,
                                 include=["documents", "metadatas", "distances"])
        return [ChunkHit(i, m["paper_id"], int(m["position"]), d, 1.0 - float(dist))
                for i, d, m, dist in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
                if m is not None]  # deleted by another writer since the vectors were loaded

    @_reading
    def nearest(self, vector, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest chunk ids with their cosine, without texts or metadata: cheap enough to
        over-fetch (a filtered search keeps what passes and fetches texts for those alone)."""
        if k <= 0:
            return []
        got = self._chunks.query(query_embeddings=[list(map(float, vector))], n_results=k, include=["distances"])
        return [(i, 1.0 - float(d)) for i, d in zip(got["ids"][0], got["distances"][0])]

    @_reading
    def nearest_among(self, vector, paper_ids: Sequence[str]) -> list[tuple[str, float]]:
        """Every chunk of ``paper_ids`` as (chunk id, exact cosine to ``vector``), best first.

        Vectors are fetched by id and without texts or metadata (``paper#0`` … ``paper#5``, then the
        next six of the papers that had a sixth, …), so the cost follows the papers asked for, not
        the index: a vector query filtered on paper ids scans metadata (benchmarks/RESULTS.md).
        """
        pending, first, ids, parts = list(dict.fromkeys(paper_ids)), 0, [], []
        while pending:
            probe = [f"{pid}#{i}" for pid in pending for i in range(first, first + _PROBE)]
            for start in range(0, len(probe), _PAGE):
                got = self._chunks.get(ids=probe[start:start + _PAGE], include=["embeddings"])
                if got["ids"]:
                    ids += got["ids"]
                    parts.append(np.asarray(got["embeddings"], dtype=np.float32))
            found = set(ids)
            pending = [pid for pid in pending if f"{pid}#{first + _PROBE - 1}" in found]
            first += _PROBE
        if not ids:
            return []
        matrix, query = np.concatenate(parts), np.asarray(vector, dtype=np.float32)
        cosines = matrix @ query / np.maximum(np.linalg.norm(matrix, axis=1) * np.linalg.norm(query), 1e-12)
        order = np.argsort(-cosines, kind="stable")
        return [(ids[i], float(cosines[i])) for i in order]

    @_reading
    def score_chunks(self, vector, paper_ids: Sequence[str]) -> list[ChunkHit]:
        """Every chunk of ``paper_ids`` with its exact cosine to ``vector`` and its text, best first
        (:meth:`nearest_among`, then the texts of those chunks)."""
        ranked = self.nearest_among(vector, paper_ids)
        texts = self.chunk_texts([chunk_id for chunk_id, _ in ranked])
        return [ChunkHit(chunk_id, *_split_id(chunk_id), texts.get(chunk_id, ""), score) for chunk_id, score in ranked]

    def chunk_table(self) -> Iterator[tuple[str, str, int, int]]:
        """(chunk_id, paper_id, position, n_chunks) of every chunk, from metadata only."""
        for ids, _, metas in self._pages(self._chunks, None, ["metadatas"]):
            yield from ((i, m["paper_id"], int(m["position"]), int(m.get("n_chunks", 1))) for i, m in zip(ids, metas))

    @_reading
    def chunk_texts(self, chunk_ids: Sequence[str]) -> dict[str, str]:
        found = {}
        for start in range(0, len(chunk_ids), _PAGE):
            got = self._chunks.get(ids=list(chunk_ids[start:start + _PAGE]), include=["documents"])
            found.update(zip(got["ids"], got["documents"]))
        return found

    @_reading
    def vectors(self, kind: str, ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored vectors of rows of ``kind`` that have one."""
        found, collection = {}, self._collection(kind)
        for i in ids:
            try:
                got = collection.get(ids=[i], include=["embeddings"])
            except ChromaError:
                continue
            found.update((k, list(map(float, v))) for k, v in zip(got["ids"], got["embeddings"]))
        return found

    def missing_vectors(self, kind: str, ids: Sequence[str]) -> list[str]:
        """Rows of ``kind`` ("chunks" or "papers") among ``ids`` that have no vector.

        Chroma fails a whole read when one row lacks its vector ("Error finding id"), so a
        failing page is split in halves until the rows at fault are found.
        """
        collection, missing = self._collection(kind), []

        def probe(part: list[str]) -> None:
            try:
                collection.get(ids=part, include=["embeddings"])
            except ChromaError:
                if len(part) == 1:
                    missing.append(part[0])
                else:
                    probe(part[:len(part) // 2])
                    probe(part[len(part) // 2:])
        for start in range(0, len(ids), _PAGE):
            probe(list(ids[start:start + _PAGE]))
        return missing

    def _collection(self, kind: str):
        if kind not in ("papers", "chunks"):
            raise ValueError(f"kind must be 'papers' or 'chunks', not {kind!r}")
        return self._papers if kind == "papers" else self._chunks

    @_reading
    def stats(self) -> IndexStats:
        return IndexStats(self.location, self._papers.count(), self._chunks.count(),
                          self.meta.model, self.meta.dim, self.meta.sources, self.meta.chunker)

    def _pages(self, collection, where, include) -> Iterator[tuple[list, list, list]]:
        offset, name = 0, collection.name
        while True:
            got = self._page(name, where, include, offset)
            if not got["ids"]:
                return
            n = len(got["ids"])
            yield got["ids"], got.get("documents") or [None] * n, got.get("metadatas") or [None] * n
            offset += n

    @_reading
    def _page(self, name: str, where, include, offset: int) -> dict:
        return self._conn.collection(name).get(where=where, include=include, limit=_PAGE, offset=offset)

    @_reading
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
        self._conn.generation = meta.generation  # our own write: our segments are current


_CONNECTIONS: dict[tuple, "_Connection"] = {}
_CONNECTIONS_LOCK = threading.Lock()


def _connection(config: StoreConfig) -> "_Connection":
    """This process's one connection to the index at ``config`` (shared by every Store on it)."""
    key = (config.host, config.port) if config.host else (os.path.realpath(config.path),)
    with _CONNECTIONS_LOCK:
        if key not in _CONNECTIONS:
            _CONNECTIONS[key] = _Connection(config)
        return _CONNECTIONS[key]


class _Connection:
    """A Chroma client and its collections, the locks of the index, and the write generation
    the client's vector segments reflect (``generation``; None before the first read).

    ``segments`` (a lock file, re-entrant per thread) guards every load and save of vector
    segments: opening and reopening here, each write in :class:`Store`. It is the only lock
    taken inside the writer lock, always in that order, so no two locks can deadlock.
    """

    def __init__(self, config: StoreConfig):
        self.remote = bool(config.host)
        self.path = "" if self.remote else os.path.realpath(config.path)
        self.config, self.epoch, self.generation = config, 0, None
        self._client, self._collections = None, {}
        self._opened_at, self._open_seconds = time.monotonic(), 0.0  # when and how fast the segments last loaded
        if self.remote:
            where = f"chroma://{config.host}:{config.port}"
            self._writer = ServerLease(lambda: self.collection(f"{config.name}_meta"), where)
            self.segments = _ThreadMutex()
        else:
            os.makedirs(self.path, exist_ok=True)
            self._writer, self.segments = WriterLock(self.path), FileMutex(self.path)
        self.max_batch = max(1, min(self.client().get_max_batch_size(), 5000))

    def client(self):
        if self._client is None:
            with self.segments.hold():
                if self._client is None:
                    self._client = _new_client(self.config, self.path)
        return self._client

    def collection_names(self) -> set[str]:
        return {c.name for c in self.client().list_collections()}

    def collection(self, name: str):
        found = self._collections.get(name)
        if found is None:
            with self.segments.hold():
                if name not in self._collections:
                    self._open_collections(name.rsplit("_", 1)[0])
                found = self._collections[name]
        return found

    def _open_collections(self, prefix: str) -> None:
        """Get or create the index's three collections and load their segments (under the segment lock)."""
        space = {"hnsw:space": "cosine"}
        client = self.client()
        for kind in ("papers", "chunks", "meta"):
            extra = {"metadata": space} if kind != "meta" else {}
            collection = client.get_or_create_collection(f"{prefix}_{kind}", embedding_function=None, **extra)
            collection.count()  # Chroma loads the vector segment (and replays its log) on first use
            self._collections[f"{prefix}_{kind}"] = collection
        got = self._collections[f"{prefix}_meta"].get(ids=["meta"], include=["metadatas"])
        self.generation = int(got["metadatas"][0]["generation"]) if got["ids"] else 0

    def behind(self, generation: int) -> bool:
        """True when another process wrote generation ``generation`` after this client loaded its segments."""
        return not self.remote and self.generation is not None and generation != self.generation

    def due(self) -> bool:
        """Whether a reopen for a new generation may happen now: reopening costs at most a tenth of the time."""
        return time.monotonic() - self._opened_at >= 10 * self._open_seconds

    def reopen(self) -> None:
        """A new Chroma client over the same directory: its segments load what is on disk now."""
        if self.remote:
            return
        with self.segments.hold():
            prefixes = {name.rsplit("_", 1)[0] for name in self._collections}
            old = SharedSystemClient._identifier_to_system.pop(self.path, None)
            SharedSystemClient._identifier_to_refcount.pop(self.path, None)
            self._client, self._collections = None, {}
            started = time.monotonic()
            for prefix in prefixes:
                self._open_collections(prefix)
            self._opened_at, self._open_seconds = time.monotonic(), time.monotonic() - started
            self.epoch += 1
            if old is not None:
                old.stop()  # frees its vectors; a call still using it fails and is retried on the new client

    def recover(self, epoch: int) -> bool:
        """After a failed read begun at ``epoch``: reopen (unless another thread just did). On a server,
        fetch the collections again (the server was restarted, or the index made anew)."""
        with self.segments.hold():
            if self.epoch == epoch:
                if self.remote:
                    self._collections = {}
                    self.epoch += 1
                else:
                    self.reopen()
        return True

    @contextmanager
    def hold_writer(self, command: str | None, wait: bool, on_wait, on_takeover=None) -> Iterator[None]:
        with self._writer.hold(command, wait, on_wait) as fresh:
            dead = getattr(self._writer, "took_over", None)
            if fresh and dead is not None and on_takeover is not None:
                on_takeover(dead)
            if fresh and self._collections:  # another process wrote since we loaded: never write over it
                self.reopen()
            yield

    def holder(self) -> Holder | None:
        return self._writer.holder()

    def renew(self) -> None:
        if self.remote:
            self._writer.renew()


def _new_client(config: StoreConfig, path: str):
    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if config.host:
        try:
            return chromadb.HttpClient(host=config.host, port=config.port, settings=settings)
        except Exception as exc:  # chromadb raises several types for "cannot connect"
            raise UnavailableError(f"Cannot reach the Chroma server at {config.host}:{config.port}: {exc}") from exc
    return chromadb.PersistentClient(path=path, settings=settings)


class _ThreadMutex:
    """A Chroma server loads and saves its own segments: only this process's threads are kept apart."""

    def __init__(self):
        self._lock = threading.RLock()

    def hold(self):
        return self._lock


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
