"""CSV records cut from a file before the csv module sees them: quote-aware and size-capped.

A quoted field may span lines, so a record is the lines from one that starts outside
quotes to the next line end outside quotes. Quotes are tracked on the bytes as they
stream past (a quote opens a field only at its start; ``""`` inside is an escaped quote),
so a record over ``max_bytes`` is skipped in bounded memory and reported once, and the
reader stays in step: the rows after it are read as they are. A quote never closed is
reported at the line it opened, and reading starts again on the line after it.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "c.csv")
>>> _ = open(path, "wb").write(b'id,abstract\\na,"one\\ntwo"\\nb,"' + b"x\\n" * 800 + b'"\\nc,"open\\nd,D.\\n')
>>> for item in csv_records(path, "c.csv", max_bytes=1024):
...     print(item)
(1, 'id,abstract')
(2, 'a,"one\\ntwo"')
c.csv:4: record too long (over 1024 bytes, lines 4-804)
c.csv:805: quoted field never closed
(806, 'd,D.')
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ingest.source_types import Rejection
from ingest.textlines import line_problem, open_utf8

_PIECE = 1 << 16  # bytes read at a time: a long line arrives in pieces
_QUOTE, _NEWLINE, _RETURN = ord('"'), ord("\n"), ord("\r")


@dataclass
class _Record:
    """The record being read: where it starts, its bytes (until too long) and its quote state."""

    start: int = 0
    pieces: list[bytes] = field(default_factory=list)
    size: int = 0
    too_long: bool = False
    inside: bool = False  # within a quoted field
    pending: bool = False  # inside, and the last piece ended on a quote: closing, or the first of ""
    prev: int = _NEWLINE  # the byte before the next piece


def csv_records(path: str, source: str, max_bytes: int, delimiter: str = ",") -> Iterator[tuple[int, str] | Rejection]:
    """Yield ``(first_line, record_text)`` (line ends inside quoted fields kept), or a Rejection."""
    start: int | None = 1
    while start is not None:
        start = yield from _scan(path, source, max_bytes, ord(delimiter), start)


def _scan(path: str, source: str, max_bytes: int, delimiter: int, first: int):
    """Records from line ``first`` on; returns the line to start again from (a quote never closed), or None."""
    record, number, line_start = _Record(), 0, True
    with open_utf8(path) as handle:
        while piece := handle.readline(_PIECE):
            if line_start:
                number += 1
            if number == 1 and line_start:
                piece = piece.removeprefix(b"\xef\xbb\xbf")
            line_start = piece.endswith(b"\n")
            if number < first:
                continue
            if not record.pieces and not record.too_long:
                record.start = record.start or number
            _add(record, piece, max_bytes, delimiter)
            if line_start and not record.inside:
                yield _finish(record, number, source, max_bytes)
                record = _Record()
    if record.inside:
        yield Rejection(source, record.start, "quoted field never closed")
        return record.start + 1
    if record.pieces or record.too_long:
        yield _finish(record, number, source, max_bytes)
    return None


def _add(record: _Record, piece: bytes, max_bytes: int, delimiter: int) -> None:
    record.inside = _quotes(record, piece, delimiter)
    record.prev = piece[-1]
    record.size += len(piece)
    if record.size > max_bytes:
        record.too_long, record.pieces = True, []
    elif not record.too_long:
        record.pieces.append(piece)


def _quotes(record: _Record, piece: bytes, delimiter: int) -> bool:
    """The quote state after ``piece``."""
    inside, i = record.inside, 0
    if record.pending:
        record.pending = False
        if piece[:1] == b'"':
            i = 1  # the second quote of an escaped ""
        else:
            inside = False
    while (j := piece.find(b'"', i)) >= 0:
        if inside:
            if j + 1 == len(piece):
                record.pending = True
                return True
            if piece[j + 1] == _QUOTE:
                i = j + 2
                continue
            inside = False
        else:
            before = piece[j - 1] if j else record.prev
            inside = before in (delimiter, _NEWLINE, _RETURN)  # else a literal quote inside an unquoted field
        i = j + 1
    return inside


def _finish(record: _Record, last: int, source: str, max_bytes: int) -> tuple[int, str] | Rejection:
    if record.too_long:
        lines = f", lines {record.start}-{last}" if last > record.start else ""
        return Rejection(source, record.start, f"record too long (over {max_bytes} bytes{lines})")
    raw = b"".join(record.pieces)
    problem = line_problem(raw)
    if problem:
        return Rejection(source, record.start, problem)
    return record.start, raw.decode("utf-8").rstrip("\r\n")
