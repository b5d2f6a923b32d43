"""What is indexed: one row per paper (name, id and link, year, source files, chunks), and removal.

Used by the web app's Library tab and by ``python -m ingest --list [--json]``, so both show
the same rows. A paper without a title is listed under its derived name
(:mod:`ingest.labels`), marked as derived. Removing a paper deletes its chunks and row;
removing a source removes the papers that came only from it and drops it from the
provenance of papers that other sources also gave.

>>> row = LibraryRow("doc-1", "QLoRA", True, "", None, ("seeds.txt",), 2)
>>> row.to_json()["name_derived"], row.link
(True, '')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ingest.labels import is_derived, paper_label
from ingest.records import Paper
from ingest.store import Store


@dataclass(frozen=True)
class LibraryRow:
    paper_id: str
    name: str  # the title, or the derived label of an untitled paper
    derived: bool  # True when ``name`` was derived from the abstract
    url: str
    year: int | None
    sources: tuple[str, ...]  # files (relative to the ingested folder) or remote specs it came from
    chunks: int

    @property
    def link(self) -> str:
        return self.url

    def to_json(self) -> dict:
        return {"paper_id": self.paper_id, "name": self.name, "name_derived": self.derived, "url": self.url,
                "year": self.year, "sources": list(self.sources), "chunks": self.chunks}


@dataclass(frozen=True)
class Library:
    rows: tuple[LibraryRow, ...]
    papers: int
    chunks: int
    sources: tuple[tuple[str, int], ...]  # (source, papers from it), most papers first

    def summary(self) -> str:
        derived = sum(r.derived for r in self.rows)
        return (f"{self.papers} papers, {self.chunks} chunks, {len(self.sources)} sources"
                f" ({derived} papers named from their abstracts)")

    def to_json(self) -> dict:
        return {"papers": self.papers, "chunks": self.chunks,
                "sources": [{"source": s, "papers": n} for s, n in self.sources],
                "rows": [r.to_json() for r in self.rows]}


@dataclass(frozen=True)
class Removal:
    removed: tuple[str, ...]  # paper ids removed
    kept: tuple[str, ...] = ()  # papers still given by another source (only their provenance changed)

    def summary(self) -> str:
        kept = f"; {len(self.kept)} kept (also from another source)" if self.kept else ""
        return f"removed {len(self.removed)} papers{kept}"


def read_library(store: Store) -> Library:
    """Every paper of ``store`` as a row, sorted by name."""
    counts = store.chunk_counts()
    rows = sorted((_row(p, counts.get(p.paper_id, 0)) for p in store.iter_papers()),
                  key=lambda r: (r.name.lower(), r.paper_id))
    per_source: dict[str, int] = {}
    for row in rows:
        for source in row.sources:
            per_source[source] = per_source.get(source, 0) + 1
    sources = tuple(sorted(per_source.items(), key=lambda item: (-item[1], item[0])))
    return Library(tuple(rows), len(rows), sum(counts.values()), sources)


def _row(paper: Paper, chunks: int) -> LibraryRow:
    return LibraryRow(paper.paper_id, paper_label(paper), is_derived(paper), paper.url, paper.year, paper.sources,
                      chunks)


def filter_rows(rows: Iterable[LibraryRow], text: str) -> list[LibraryRow]:
    """Rows whose name, id, year or source contains every word of ``text`` (case-insensitive).

    >>> rows = [LibraryRow("2305.14314", "QLoRA", False, "", 2023, ("a.txt",), 2),
    ...         LibraryRow("doc-2", "Orca", True, "", None, ("b.txt",), 1)]
    >>> [r.name for r in filter_rows(rows, "b.TXT")], [r.name for r in filter_rows(rows, "2023 qlora")]
    (['Orca'], ['QLoRA'])
    """
    words = text.lower().split()
    if not words:
        return list(rows)
    def haystack(r: LibraryRow) -> str:
        return " ".join([r.name, r.paper_id, str(r.year or ""), *r.sources]).lower()
    return [r for r in rows if all(w in haystack(r) for w in words)]


def remove_papers(store: Store, paper_ids: Sequence[str]) -> Removal:
    """Delete papers (chunks and rows); ids not in the index are ignored. ValueError when none is given."""
    ids = [i.strip() for i in paper_ids if i and i.strip()]
    if not ids:
        raise ValueError("no paper id given")
    found = list(store.get_papers(ids))
    if found:
        store.write([], [], [], remove=found)
    return Removal(tuple(found))


def remove_source(store: Store, source: str) -> Removal:
    """Remove the papers that came only from ``source``; papers other sources also gave lose it from provenance."""
    if not source or not source.strip():
        raise ValueError("no source given")
    only, shared = [], []
    for paper in store.iter_papers():
        if source in paper.sources:
            rest = tuple(s for s in paper.sources if s != source)
            (shared if rest else only).append(replace(paper, sources=rest) if rest else paper)
    if shared:
        store.update_metadata(shared)
    if only:
        store.write([], [], [], remove=[p.paper_id for p in only])
    store.remove_sources([source])
    return Removal(tuple(p.paper_id for p in only), tuple(p.paper_id for p in shared))


def format_rows(library: Library) -> str:
    """The ``--list`` table: one line per paper, then the totals."""
    lines = [f"{'id':<22} {'year':<4}  {'chunks':>6}  {'source':<28} name"]
    for r in library.rows:
        name = f"{r.name} (derived)" if r.derived else r.name
        lines.append(f"{r.paper_id:<22} {r.year or '':<4}  {r.chunks:>6}  {', '.join(r.sources)[:28]:<28} {name}")
    lines.append(library.summary())
    return "\n".join(lines)
