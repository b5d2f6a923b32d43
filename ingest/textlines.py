"""Bounded-memory line reading shared by every text format.

Lines are read as bytes with a length cap, so a single 5 MB line costs at most
``max_line_bytes`` of memory; it is skipped and reported. Each line is decoded on
its own, so one line of invalid UTF-8 is rejected while its neighbours are kept.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "t.txt")
>>> _ = open(path, "wb").write(b"\\xef\\xbb\\xbfgood\\r\\nbad \\xff\\n" + b"x" * 5000 + b"\\nlast")
>>> for item in read_lines(path, "t.txt", max_line_bytes=1024):
...     print(item)
(1, 'good')
t.txt:2: invalid UTF-8 (byte 0xff at column 5)
t.txt:3: line too long (over 1024 bytes)
(4, 'last')
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from ingest.source_types import Rejection

_SKIP_CHUNK = 1 << 16
_BOM = b"\xef\xbb\xbf"


def read_lines(path: str, source: str, max_line_bytes: int) -> Iterator[tuple[int, str] | Rejection]:
    """Yield ``(line_number, text)`` without the line ending, or a Rejection for the line."""
    with open(path, "rb") as handle:
        yield from iter_lines(handle, source, max_line_bytes)


def iter_lines(handle: BinaryIO, source: str, max_line_bytes: int) -> Iterator[tuple[int, str] | Rejection]:
    """:func:`read_lines` over an open binary handle."""
    number = 0
    while True:
        raw = handle.readline(max_line_bytes + 1)
        if not raw:
            return
        number += 1
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            _skip_to_line_end(handle)
            yield Rejection(source, number, f"line too long (over {max_line_bytes} bytes)")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Rejection(source, number, f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")
            continue
        yield number, text.rstrip("\r\n")


def _skip_to_line_end(handle: BinaryIO) -> None:
    # Read the rest of an over-long line in fixed chunks: memory stays bounded.
    while True:
        chunk = handle.readline(_SKIP_CHUNK)
        if not chunk or chunk.endswith(b"\n"):
            return


def read_head(path: str, size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of a file, for sniffing its format."""
    with open(path, "rb") as handle:
        return handle.read(size)
