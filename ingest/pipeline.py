"""Ingest sources into an index: read → dedupe → chunk → embed → store, in batches.

Sources are streamed: memory holds one batch of records plus the ids this run has
seen. Each batch is checked against the index (two store calls), only new or
changed papers are chunked and embedded, and one ``Store.write`` stores them.
Because the store writes a paper's row after its chunks, and a re-run recomputes
the same papers, a run killed at any point is completed by running it again. A run
holds the index's writer lock throughout (:meth:`ingest.store.Store.writing`): a
second ingest into the same index waits for it. The chunker's settings are recorded
before the first batch of a new index, so even a first run killed midway leaves them.

>>> import tempfile, os
>>> from ingest.store import Store, StoreConfig
>>> from models.embedder import Embedder
>>> folder, index = tempfile.mkdtemp(), tempfile.mkdtemp()
>>> with open(os.path.join(folder, "p.jsonl"), "w") as f:
...     _ = f.write('{"id": "2305.14314", "title": "QLoRA", "abstract": "Finetune in 4 bits."}\\n{"title": "x"}\\n')
>>> embedder = Embedder()
>>> store = Store.open(StoreConfig(path=index), embedder.name, embedder.dim)
>>> report = ingest([folder], store, embedder)
>>> report.summary()
'added 1, updated 0, unchanged 0, merged 0 duplicates, rejected 1 — index: 1 papers, 1 chunks'
>>> ingest([folder], store, embedder).summary()
'added 0, updated 0, unchanged 1, merged 0 duplicates, rejected 1 — index: 1 papers, 1 chunks'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

from ingest.chunk import ChunkerConfig, chunk_paper
from ingest.dedupe import Group, plan_batch
from ingest.records import Paper
from ingest.sources import ReadOptions, Rejection, read_source
from ingest.store import Store
from models.embedder import Embedder
from models.errors import UnavailableError


@dataclass(frozen=True)
class IngestOptions:
    """``batch_size`` papers are deduplicated, embedded and written together."""

    read: ReadOptions = ReadOptions()
    chunker: ChunkerConfig = ChunkerConfig()
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")


@dataclass(frozen=True)
class IngestProgress:
    """Running totals of one ingest, reported after every batch."""

    papers_parsed: int  # records read (before deduplication)
    rejected: int
    papers_written: int  # papers added or updated in the index
    chunks_embedded: int


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0  # records folded into another record of the same paper
    rejected: list[Rejection] = field(default_factory=list)
    papers_in_index: int = 0
    chunks_in_index: int = 0
    seconds: float = 0.0
    papers_parsed: int = 0
    chunks_embedded: int = 0
    stale_chunker: str | None = None  # set when the index's chunks were cut otherwise: what it recorded

    @property
    def stale_note(self) -> str | None:
        """What to tell the user when older papers keep chunks cut with other settings."""
        if self.stale_chunker is None:
            return None
        how = self.stale_chunker or "settings from before they were recorded"
        return (f"note: papers indexed earlier keep chunks cut with {how}; "
                "run python -m ingest --rechunk (same --index) to re-cut and re-embed them")

    def summary(self) -> str:
        return (f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
                f"merged {self.merged} duplicates, rejected {len(self.rejected)} — "
                f"index: {self.papers_in_index} papers, {self.chunks_in_index} chunks")


def ingest(sources: Sequence[str], store: Store, embedder: Embedder, options: IngestOptions = IngestOptions(),
           progress: Callable[[IngestProgress], None] | None = None) -> IngestReport:
    """Read every source into ``store``; bad records are reported in ``rejected``, never fatal."""
    if isinstance(sources, str):
        raise ValueError("sources must be a sequence of specs, not one string")
    started = time.perf_counter()
    report = IngestReport()
    with store.writing():  # one writer at a time: waits for another ingest into the same index
        seen: dict[str, str] = {}  # paper id -> status, for papers this run has handled
        provenance: set[str] = set()
        written = 0
        fingerprint = options.chunker.fingerprint(embedder.max_tokens)
        if store.stats().papers == 0:
            store.set_chunker(fingerprint)  # before the first batch: a run killed after it leaves the record
        elif store.meta.chunker != fingerprint:
            report.stale_chunker = store.meta.chunker
        records = _records(sources, options.read, report)
        while batch := list(islice(records, options.batch_size)):
            report.papers_parsed += len(batch)
            provenance.update(s for paper in batch for s in paper.sources)
            written += _ingest_batch(batch, store, embedder, options.chunker, seen, report)
            if progress:
                progress(IngestProgress(report.papers_parsed, len(report.rejected), written, report.chunks_embedded))
        store.add_sources(sorted(provenance))
        return _finish(report, store, started)


def rechunk(store: Store, embedder: Embedder, options: IngestOptions = IngestOptions(),
            progress: Callable[[IngestProgress], None] | None = None) -> IngestReport:
    """Re-cut and re-embed every paper of ``store`` with ``options.chunker`` (``updated`` counts them).

    Run after the chunker or the embedding window changed. Killed midway, it is finished by
    running it again: the index records the new settings only once every paper is done.
    """
    started = time.perf_counter()
    report = IngestReport()
    with store.writing():
        ids = store.paper_ids()
        for start in range(0, len(ids), options.batch_size):
            papers = list(store.get_papers(ids[start:start + options.batch_size]).values())
            _write(papers, store, embedder, options.chunker, report)
            report.updated += len(papers)
            if progress:
                progress(IngestProgress(report.updated, 0, report.updated, report.chunks_embedded))
        store.set_chunker(options.chunker.fingerprint(embedder.max_tokens))
        return _finish(report, store, started)


def _write(papers: list[Paper], store: Store, embedder: Embedder, chunker: ChunkerConfig, report: IngestReport,
           remove: Sequence[str] = ()) -> None:
    """Chunk, embed and store ``papers`` in one write."""
    chunks = [c for p in papers for c in chunk_paper(p, chunker, embedder.max_tokens)]
    store.write(papers, chunks, embedder.embed([c.text for c in chunks]), remove=remove)
    report.chunks_embedded += len(chunks)


def _finish(report: IngestReport, store: Store, started: float) -> IngestReport:
    stats = store.stats()
    report.papers_in_index, report.chunks_in_index = stats.papers, stats.chunks
    report.seconds = time.perf_counter() - started
    return report


def _records(sources: Sequence[str], options: ReadOptions, report: IngestReport) -> Iterator[Paper]:
    for spec in sources:
        try:
            for item in read_source(spec, options):
                if isinstance(item, Rejection):
                    report.rejected.append(item)
                else:
                    yield item
        except (ValueError, OSError, UnavailableError) as exc:  # an unreadable or unreachable source:
            report.rejected.append(Rejection(spec, None, str(exc) or type(exc).__name__))  # the others still count
        except RecursionError:
            report.rejected.append(Rejection(spec, None, "nested too deeply; the rest of this source was not read"))
        except Exception as exc:  # noqa: BLE001 - a surprise in one source must not cost the others
            report.rejected.append(Rejection(spec, None, f"unexpected {type(exc).__name__}: {exc}; the rest of this "
                                                         "source was not read"))


def _ingest_batch(batch: list[Paper], store: Store, embedder: Embedder, chunker: ChunkerConfig,
                  seen: dict[str, str], report: IngestReport) -> int:
    """Dedupe one batch against the index and the run so far, then write what changed."""
    stored = store.get_papers([p.paper_id for p in batch])
    stored_by_fp = store.papers_by_fingerprint([p.fingerprint for p in batch])
    groups = plan_batch(batch, stored, stored_by_fp, seen)
    for group in groups:
        _count(group, seen, report)
    changed = [g for g in groups if g.changed]
    if not changed:
        return 0
    papers = [g.result for g in changed]
    _write(papers, store, embedder, chunker, report, remove=[old.paper_id for g in changed for old in g.absorbed])
    return len(papers)


def _count(group: Group, seen: dict[str, str], report: IngestReport) -> None:
    before = seen.get(group.target) or next((seen[p.paper_id] for p in group.absorbed if p.paper_id in seen), None)
    if group.records and group.first:
        setattr(report, group.status, getattr(report, group.status) + 1)
        report.merged += len(group.records) - 1
    elif group.records:
        report.merged += len(group.records)
        if before == "unchanged" and group.status == "updated":  # a later batch changed it after all
            report.unchanged -= 1
            report.updated += 1
    if group.records or before:
        seen[group.target] = group.status
    for old in group.absorbed:
        seen.pop(old.paper_id, None)
