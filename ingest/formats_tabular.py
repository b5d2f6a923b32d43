"""Tabular formats: JSON Lines (BEIR corpora, the arXiv snapshot), JSON, CSV/TSV, Parquet.

Every reader streams: JSON Lines and CSV line by line with a length cap, JSON arrays
element by element, Parquet in row-group batches, so the multi-gigabyte arXiv
metadata snapshot is read in constant memory. Each bad record becomes a Rejection
and reading goes on. ``category``/``since`` filters are applied here because only
the raw record knows the snapshot's ``update_date``.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "c.jsonl")
>>> _ = open(path, "w").write('{"_id": "1", "title": "T", "text": "Body."}\\n{oops\\n')
>>> for item in read_jsonl(path, "c.jsonl", ReadOptions()):
...     print(item.paper_id if hasattr(item, "paper_id") else item)
1
c.jsonl:2: malformed JSON: Expecting property name enclosed in double quotes (column 2)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from ingest.csv_records import csv_records
from ingest.json_stream import iter_json_rows, too_deep
from ingest.record_fields import ABSTRACT_KEYS, KNOWN_KEYS, nesting_depth, records_in, row_to_paper, row_update_date
from ingest.records import Paper
from ingest.source_types import ReadOptions, Rejection
from ingest.textlines import read_lines

Record = Paper | Rejection
_PARQUET_BATCH = 1024


def keep_row(row: object, source: str, line: int | None, options: ReadOptions) -> Record | None:
    """The row's paper if it passes the filters, its Rejection, or None when filtered out."""
    paper = row_to_paper(row, source, line)
    if isinstance(paper, Rejection) or options.keeps(paper, row_update_date(row)):  # type: ignore[arg-type]
        return paper
    return None


def read_jsonl(path: str, source: str, options: ReadOptions) -> Iterator[Record]:
    """One JSON object per line; blank lines are skipped."""
    wanted = (options.category or "").strip()
    for item in read_lines(path, source, options.max_line_bytes):
        if isinstance(item, Rejection):
            yield item
            continue
        number, text = item
        if not text.strip():
            continue
        if wanted and wanted not in text and wanted.lower() not in text.lower():
            continue  # cannot match the category: skip the JSON parse (snapshot speed)
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Rejection(source, number, f"malformed JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:  # 100,000 brackets: deeper than Python's decoder goes
            yield Rejection(source, number, too_deep(options.max_depth))
            continue
        if nesting_depth(row, options.max_depth) > options.max_depth:
            yield Rejection(source, number, too_deep(options.max_depth))
            continue
        for record in records_in(row) if isinstance(row, dict) else [row]:
            kept = keep_row(record, source, number, options)
            if kept is not None:
                yield kept


def read_json(path: str, source: str, options: ReadOptions) -> Iterator[Record]:
    """A JSON array of records (streamed), or one object holding a record or a list of them."""
    for number, row in iter_json_rows(path, source, options.max_line_bytes, options.max_depth):
        if isinstance(row, Rejection):
            yield row
            continue
        kept = keep_row(row, source, number, options)
        if kept is not None:
            yield kept


def read_csv(path: str, source: str, options: ReadOptions, delimiter: str = ",") -> Iterator[Record]:
    """CSV (or TSV with ``delimiter="\\t"``) with a header row; quoted fields may span lines.

    Records are cut by :func:`ingest.csv_records.csv_records` (quote-aware, size-capped), then
    each is parsed on its own, so a bad record never shifts the ones after it. A row with
    more or fewer fields than the header (an unquoted comma) is rejected, never stored shifted.
    """
    csv.field_size_limit(max(csv.field_size_limit(), options.max_line_bytes))
    kind = "TSV" if delimiter == "\t" else "CSV"
    header: list[str] | None = None
    for item in csv_records(path, source, options.max_line_bytes, delimiter):
        if isinstance(item, Rejection):
            yield item
            continue
        start, text = item
        try:
            cells = next(csv.reader([text], delimiter=delimiter, strict=True), [])
        except csv.Error as exc:
            yield Rejection(source, start, f"malformed {kind}: {exc}")
            continue
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = _header(cells)
            if not header:
                yield Rejection(source, start, "header names no abstract/summary/text column")
                return
            continue
        if len(cells) != len(header):
            yield Rejection(source, start, f"{len(cells)} fields where the header has {len(header)} "
                                           f"(an unquoted {'tab' if delimiter == chr(9) else 'comma'}?)")
            continue
        kept = keep_row(dict(zip(header, cells)), source, start, options)
        if kept is not None:
            yield kept


def _header(cells: list[str]) -> list[str] | None:
    """The column names, or None when none of them holds an abstract."""
    names = [c.strip() for c in cells]
    return names if {n.lower() for n in names} & set(ABSTRACT_KEYS) else None


def read_tsv(path: str, source: str, options: ReadOptions) -> Iterator[Record]:
    return read_csv(path, source, options, delimiter="\t")


def read_parquet(path: str, source: str, options: ReadOptions) -> Iterator[Record]:
    """Parquet in batches of rows, reading only the columns a paper uses; ``line`` is the row."""
    import pyarrow.parquet as pq  # only Parquet needs pyarrow

    try:
        table = pq.ParquetFile(path)
        columns = [n for n in table.schema_arrow.names if n.lower() in KNOWN_KEYS]
        batches = table.iter_batches(batch_size=_PARQUET_BATCH, columns=columns)
        row_number = 0
        for batch in batches:
            for row in batch.to_pylist():
                row_number += 1
                kept = keep_row(row, source, row_number, options)
                if kept is not None:
                    yield kept
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        yield Rejection(source, None, f"unreadable Parquet file: {exc}")


READERS = {"jsonl": read_jsonl, "arxiv-snapshot": read_jsonl, "json": read_json,
           "csv": read_csv, "tsv": read_tsv, "parquet": read_parquet}
