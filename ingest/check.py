"""``python -m ingest --check [--repair]``: is every paper whole, and if not, make it so.

A healthy index has, for every paper row, all its chunks (``paper#0`` … ``paper#n-1``,
agreeing on ``n``) and a vector for the row and for every chunk; no chunk without its
paper; a saved keyword index listing exactly the indexed papers (or behind by writes it
will apply on the next search); and the record of how the chunks were cut. :func:`check`
finds what is missing; :func:`repair` re-embeds only that: lost vectors get new ones from
their own text, a paper missing chunks is re-cut, chunks without a paper are dropped, the
keyword index is rebuilt, and a missing chunker record is written once every paper's
chunks are found to be cut as today's chunker cuts them.

>>> import tempfile
>>> from ingest.pipeline import ingest
>>> from ingest.store import Store, StoreConfig
>>> from models.embedder import Embedder
>>> embedder, folder = Embedder(), tempfile.mkdtemp()
>>> _ = open(f"{folder}/p.jsonl", "w").write('{"id": "2305.14314", "abstract": "Finetune in 4 bits."}\\n')
>>> store = Store.open(StoreConfig(path=tempfile.mkdtemp()), embedder.name, embedder.dim)
>>> _ = ingest([folder], store, embedder)
>>> report = check(store, embedder)
>>> report.ok, report.lines()[0]
(True, 'papers: 1, chunks: 1 — every paper has all its chunks')
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import islice

from ingest.chunk import ChunkerConfig, chunk_paper
from ingest.store import Store
from models.embedder import Embedder


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check` found; ``ok`` when nothing needs repair (``notes`` are not faults)."""

    papers: int
    chunks: int
    incomplete: tuple[str, ...] = ()  # papers missing chunks, or whose chunks disagree on how many there are
    orphans: tuple[str, ...] = ()  # chunk ids whose paper is not in the index
    chunk_vectors: tuple[str, ...] = ()  # chunk ids without a vector
    paper_vectors: tuple[str, ...] = ()  # paper ids whose row has no vector
    keyword: str = ""  # how the saved keyword index compares
    keyword_ok: bool = True
    chunker_ok: bool = True
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not (self.incomplete or self.orphans or self.chunk_vectors or self.paper_vectors) \
            and self.keyword_ok and self.chunker_ok

    def lines(self) -> list[str]:
        """The report as the command line prints it: one line per kind of check."""
        whole = "every paper has all its chunks" if not self.incomplete else \
            f"{len(self.incomplete)} papers miss chunks: {_few(self.incomplete)}"
        lines = [f"papers: {self.papers}, chunks: {self.chunks} — {whole}"]
        if self.orphans:
            lines.append(f"{len(self.orphans)} chunks belong to no paper: {_few(self.orphans)}")
        lines.append(f"vectors: {self.chunks - len(self.chunk_vectors)} of {self.chunks} chunks, "
                     f"{self.papers - len(self.paper_vectors)} of {self.papers} papers"
                     + (f"; missing for {_few(self.chunk_vectors + self.paper_vectors)}"
                        if self.chunk_vectors or self.paper_vectors else ""))
        lines.append(f"keyword index: {self.keyword}")
        return lines + list(self.notes)


def _few(items: tuple[str, ...], shown: int = 5) -> str:
    return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")


def check(store: Store, embedder: Embedder, chunker: ChunkerConfig = ChunkerConfig()) -> CheckReport:
    """Look at every paper, chunk and vector of ``store`` (its segments reloaded from disk first)."""
    store.reopen()
    store.reload_meta()
    papers = set(store.paper_ids())
    chunks: dict[str, list[tuple[int, int]]] = defaultdict(list)
    chunk_ids = []
    for chunk_id, paper_id, position, n_chunks in store.chunk_table():
        chunks[paper_id].append((position, n_chunks))
        chunk_ids.append(chunk_id)
    incomplete = tuple(sorted(p for p in papers if not _whole(chunks.get(p, []))))
    orphans = tuple(sorted(c for c in chunk_ids if c.rsplit("#", 1)[0] not in papers))
    keyword, keyword_ok = _keyword_state(store, papers)
    chunker_ok, notes = _chunker_state(store, embedder, chunker)
    return CheckReport(len(papers), len(chunk_ids), incomplete, orphans,
                       tuple(sorted(store.missing_vectors("chunks", chunk_ids))),
                       tuple(sorted(store.missing_vectors("papers", sorted(papers)))),
                       keyword, keyword_ok, chunker_ok, tuple(notes))


def _whole(found: list[tuple[int, int]]) -> bool:
    counts = {n for _, n in found}
    return len(counts) == 1 and sorted(p for p, _ in found) == list(range(counts.pop()))


def _keyword_state(store: Store, papers: set[str]) -> tuple[str, bool]:
    from chat.keyword import KeywordConfig, KeywordIndex  # the keyword index is the search side's

    if store.config.host:
        return "kept in memory by each reader of a Chroma server (nothing saved to check)", True
    directory = os.path.join(store.config.path, "keyword")
    saved = KeywordIndex(KeywordConfig(), directory)
    saved._load()  # noqa: SLF001 - read as saved, without bringing it up to date
    if saved.generation == 0:
        return "not saved yet (built by the first search)", True
    listed = set(saved.papers.ids)
    if saved.generation > store.meta.generation or (saved.generation == store.meta.generation and listed != papers):
        return (f"does not match the index ({len(listed ^ papers)} papers differ at generation "
                f"{saved.generation}); --repair rebuilds it"), False
    if saved.generation < store.meta.generation:
        return (f"{len(listed)} papers at generation {saved.generation} of {store.meta.generation} "
                "(the next search brings it up to date)"), True
    return f"{len(listed)} papers, matches the index (generation {saved.generation})", True


def _chunker_state(store: Store, embedder: Embedder, chunker: ChunkerConfig) -> tuple[bool, list[str]]:
    today = chunker.fingerprint(embedder.max_tokens)
    if store.meta.chunker == today:
        return True, [f"chunker: {today} (today's)"]
    if store.meta.chunker:
        return True, [f"chunker: {store.meta.chunker}; today's is {today}: python -m ingest --rechunk re-cuts"]
    if store.stats().papers == 0:
        return True, ["chunker: not recorded (no papers yet)"]
    return False, ["chunker: not recorded; --repair records it if the chunks are cut as today's chunker cuts them"]


@dataclass(frozen=True)
class RepairReport:
    """What :func:`repair` did, and the check after it."""

    reembedded_chunks: int
    reembedded_papers: int
    recut_papers: int
    dropped_chunks: int
    keyword_rebuilt: bool
    chunker_recorded: bool
    after: CheckReport

    def line(self) -> str:
        return (f"repaired: {self.reembedded_chunks} chunk vectors and {self.reembedded_papers} paper vectors "
                f"re-embedded, {self.recut_papers} papers re-cut, {self.dropped_chunks} stray chunks dropped"
                + (", keyword index rebuilt" if self.keyword_rebuilt else "")
                + (", chunker recorded" if self.chunker_recorded else ""))


def repair(store: Store, embedder: Embedder, found: CheckReport, chunker: ChunkerConfig = ChunkerConfig()) -> RepairReport:
    """Fix what ``found`` lists, re-embedding only what is missing; then check again."""
    with store.writing():
        if found.orphans:
            store.delete_chunks(list(found.orphans))
        recut = sorted(found.incomplete)
        for start in range(0, len(recut), 64):
            papers = list(store.get_papers(recut[start:start + 64]).values())
            chunks = [c for p in papers for c in chunk_paper(p, chunker, embedder.max_tokens)]
            store.write(papers, chunks, embedder.embed([c.text for c in chunks]))
        skip = set(recut)
        lost = [c for c in found.chunk_vectors if c.rsplit("#", 1)[0] not in skip]
        texts = store.chunk_texts(lost)
        lost = [c for c in lost if c in texts]
        if lost:
            store.restore_vectors("chunks", lost, embedder.embed([texts[c] for c in lost]))
        rows = [p for p in found.paper_vectors if p not in skip]
        if rows:
            firsts = store.vectors("chunks", [f"{p}#0" for p in rows])
            store.restore_vectors("papers", rows, [firsts[f"{p}#0"] for p in rows])
        rebuilt = not found.keyword_ok and _rebuild_keyword(store)
        recorded = not found.chunker_ok and _record_chunker(store, embedder, chunker)
    after = check(store, embedder, chunker)
    return RepairReport(len(lost), len(rows), len(recut), len(found.orphans), rebuilt, recorded, after)


def _rebuild_keyword(store: Store) -> bool:
    from chat.keyword import KeywordIndex

    directory = os.path.join(store.config.path, "keyword")
    for name in ("index.json", "postings.npz"):
        if os.path.exists(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))
    KeywordIndex.open(store, directory)  # built from the store and saved
    return True


def _record_chunker(store: Store, embedder: Embedder, chunker: ChunkerConfig) -> bool:
    """Record today's chunker when every paper's stored chunks are exactly what it cuts."""
    papers = store.iter_papers()
    while batch := list(islice(papers, 500)):
        expected = [c for p in batch for c in chunk_paper(p, chunker, embedder.max_tokens)]
        stored = store.chunk_texts([c.chunk_id for c in expected])
        if any(stored.get(c.chunk_id) != c.text for c in expected):
            return False
    store.set_chunker(chunker.fingerprint(embedder.max_tokens))
    return True
