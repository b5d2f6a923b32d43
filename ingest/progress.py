"""Progress of an ingest a person can read: done/total, rate and time left, and a cheap pre-count.

The pipeline reports running counts (``IngestProgress``); the total comes from
:func:`estimate_total`, which counts what a source holds without embedding anything:
lines of a JSON Lines or CSV file, rows of a Parquet file, the records of a small page
or JSON file, the ids of an ``arxiv:`` id list, at most ``max_results`` for an arXiv
search. When it cannot be known cheaply (a read filter, an ``hf:`` dataset, a huge
JSON array), the total is None and the progress says "total unknown".

>>> meter = ProgressMeter(total=180, clock=iter([0.0, 4.0]).__next__)
>>> meter.line(64)
'64/180 papers (35%) · 16.0 papers/s · about 7 s left'
>>> ProgressMeter(None, clock=iter([0.0, 2.0]).__next__).line(10)
'10 papers (total unknown) · 5.0 papers/s'
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.source_types import ReadOptions

_SMALL_FILE = 20 << 20  # page and JSON files up to this size are parsed to count their records
_LINE_FORMATS = {"jsonl", "arxiv-snapshot", "csv", "tsv"}


@dataclass(frozen=True)
class Total:
    """How many records an ingest will read: ``count`` None when unknown; ``exact`` False for an upper bound."""

    count: int | None
    exact: bool = True


class ProgressMeter:
    """Rate and time left from (records done) observations; the clock starts at construction."""

    def __init__(self, total: int | None, unit: str = "papers", clock: Callable[[], float] = time.monotonic):
        self.total, self.unit, self._clock = total, unit, clock
        self.started = clock()

    def rate(self, done: int) -> float:
        elapsed = self._clock() - self.started
        return done / elapsed if elapsed > 0 else 0.0

    def line(self, done: int) -> str:
        rate = self.rate(done)
        speed = f" · {rate:.1f} {self.unit}/s" if rate else ""
        if not self.total:
            return f"{done} {self.unit} (total unknown){speed}"
        done = min(done, self.total)
        left = f" · about {format_seconds((self.total - done) / rate)} left" if rate and done < self.total else ""
        return f"{done}/{self.total} {self.unit} ({done * 100 // self.total}%){speed}{left}"


def format_seconds(seconds: float) -> str:
    """``format_seconds(7.2), format_seconds(125), format_seconds(7300)`` -> ('7 s', '2 min 5 s', '2 h 2 min')"""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def estimate_total(sources: Sequence[str], options: ReadOptions = ReadOptions()) -> Total:
    """Records the sources will yield (papers and rejected records), counted cheaply; see the module docstring."""
    count, exact = 0, True
    for spec in sources:
        part = _estimate_one(spec, options)
        if part.count is None:
            return Total(None, False)
        count += part.count
        exact = exact and part.exact
    return Total(count, exact)


def _estimate_one(spec: str, options: ReadOptions) -> Total:
    from ingest.remote import DEFAULT_SEARCH_RESULTS, arxiv_ids

    if spec.startswith("hf:"):
        return Total(None, False)
    if spec.startswith("arxiv:"):
        ids = arxiv_ids(spec.removeprefix("arxiv:").strip())
        return Total(len(ids)) if ids else Total(options.max_results or DEFAULT_SEARCH_RESULTS, exact=False)
    if options.category or options.since:
        return Total(None, False)  # a filter drops an unknown share of the records
    root = Path(spec)
    if root.is_file():
        return _count_file(root, options)
    if root.is_dir():
        from ingest.sources import _walk  # the same files, in the same order, as the read

        total = Total(0)
        for path in _walk(root):
            part = _count_file(path, options)
            if part.count is None:
                return Total(None, False)
            total = Total(total.count + part.count, total.exact and part.exact)
        return total
    return Total(1)  # a missing path: one rejection


def _count_file(path: Path, options: ReadOptions) -> Total:
    from ingest.sources import read_file, sniff_format

    try:
        fmt, _ = sniff_format(path, options.format)
        if fmt is None:
            return Total(1)  # rejected as a whole
        if fmt in _LINE_FORMATS:
            lines = _count_lines(path)
            return Total(max(lines - (fmt in ("csv", "tsv")), 0), exact=False)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return Total(pq.ParquetFile(path).metadata.num_rows)
        if os.path.getsize(path) <= _SMALL_FILE:
            return Total(sum(1 for _ in read_file(path, path.name, options)))
    except (OSError, ValueError, ImportError):
        return Total(1)
    return Total(None, False)


def _count_lines(path: Path) -> int:
    """Non-empty lines, read in 1 MB blocks (about a second per GB)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n") - block.count(b"\n\n")
            last = block[-1:]
    return lines + (last != b"\n")
