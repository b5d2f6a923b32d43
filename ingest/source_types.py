"""What every parser yields and how a read is configured: ``Rejection`` and ``ReadOptions``.

Both are re-exported by :mod:`ingest.sources` (the public entry point); they live
here so the format modules can use them without importing ``sources``.

>>> Rejection("bad.jsonl", 3, "malformed JSON: Expecting value")
Rejection(source='bad.jsonl', line=3, reason='malformed JSON: Expecting value')
>>> opts = ReadOptions(category="cs.CL", since="2023-01")
>>> opts.since, opts.keeps_category(("cs.LG", "cs.CL")), opts.keeps_date("2022-12-31")
('2023-01', True, False)
>>> ReadOptions(format="docx")
Traceback (most recent call last):
...
ValueError: unknown format 'docx'; choose one of: abstract-lines, arxiv-snapshot, csv, dump, json, jsonl, pages, parquet, tsv
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.records import Paper, normalise_date

ARXIV_API_URL = "https://export.arxiv.org/api/query"

# The names ``--format`` accepts. The first three are the seed page formats of
# data/samples, the rest tabular formats; "arxiv-snapshot" is JSON Lines read
# with the arXiv metadata snapshot's field names (auto-detected as "jsonl" too).
PAGE_FORMATS = ("abstract-lines", "dump", "pages")
TABULAR_FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "arxiv-snapshot")
FORMATS = PAGE_FORMATS + TABULAR_FORMATS


@dataclass(frozen=True)
class Rejection:
    """Input that could not become a paper: where it was (``line`` is 1-based, or the
    1-based row of a Parquet file / remote feed entry; None for a whole file) and why."""

    source: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ReadOptions:
    """How :func:`ingest.sources.read_source` reads a spec.

    ``format``: None to detect from extension and content, else one of ``FORMATS``:
    ``abstract-lines`` (a page header, then one abstract per line), ``dump`` (Hugging Face
    dataset-viewer dump: header, then id / abstract line pairs), ``pages`` (Hugging Face
    papers and Daily Papers pages: title / abstract pairs with page chrome), ``jsonl``,
    ``json``, ``csv``, ``tsv``, ``parquet``, ``arxiv-snapshot`` (the arXiv metadata snapshot;
    JSON Lines). ``category``: keep papers listing it ("cs.CL"; "cs" keeps any "cs.*").
    ``since``: keep papers dated on or after this ISO date (the later of ``published`` and
    ``update_date`` where a record has both). A filter drops papers that lack the field.
    ``max_results``: most records taken from a remote source; None means all rows of an
    ``hf:`` dataset and 100 papers for an ``arxiv:`` search. ``max_line_bytes``: longer
    lines are rejected as "line too long" without being read into memory (a CSV record or a
    JSON array element has the same limit). ``max_depth``: JSON records nested deeper (lists and
    objects) are rejected; a paper record needs 3-4 levels. ``timeout_s``: network timeout of one remote request.
    """

    format: str | None = None
    category: str | None = None
    since: str | None = None
    arxiv_base_url: str = ARXIV_API_URL
    arxiv_delay_s: float = 3.0
    page_size: int = 100
    max_results: int | None = None
    max_line_bytes: int = 1_000_000
    max_depth: int = 32
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; choose one of: {', '.join(sorted(FORMATS))}")
        if self.since is not None and not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", self.since.strip()):
            raise ValueError(f"since must be an ISO date such as 2023-01-01, not {self.since!r}")
        if self.page_size < 1 or (self.max_results is not None and self.max_results < 1):
            raise ValueError("page_size and max_results must be positive")
        if self.arxiv_delay_s < 0 or self.max_line_bytes < 1024 or self.timeout_s <= 0 or self.max_depth < 4:
            raise ValueError("arxiv_delay_s must be >= 0, max_line_bytes >= 1024, max_depth >= 4, timeout_s > 0")
        if self.since is not None:
            object.__setattr__(self, "since", normalise_date(self.since))

    def keeps_category(self, categories: tuple[str, ...]) -> bool:
        """True without a category filter, else when any category equals it or sits under it."""
        if not self.category:
            return True
        wanted = self.category.strip().lower()
        return any(c.lower() == wanted or c.lower().startswith(wanted + ".") for c in categories)

    def keeps_date(self, *dates: str) -> bool:
        """True without ``since``, else when the latest known date is not before it.

        Dates compare at their common precision, so "2023" passes ``since="2023-06-01"``.
        """
        if not self.since:
            return True
        known = [normalise_date(d) for d in dates if d and normalise_date(d)]
        if not known:
            return False
        latest = max(known)
        width = min(len(latest), len(self.since))
        return latest[:width] >= self.since[:width]

    def keeps(self, paper: Paper, *extra_dates: str) -> bool:
        return self.keeps_category(paper.categories) and self.keeps_date(paper.date, *extra_dates)
