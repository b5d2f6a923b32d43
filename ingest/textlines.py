"""Bounded-memory line reading shared by every text format.

Lines are read as bytes with a length cap, so a single 5 MB line costs at most
``max_line_bytes`` of memory; it is skipped and reported. Each line is decoded on
its own, so one line of invalid UTF-8, or with a NUL byte (stray binary data), is
rejected while its neighbours are kept. UTF-16 files (with a byte-order mark, or
recognised by their zero bytes) are transcoded to UTF-8 as they are read.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "t.txt")
>>> _ = open(path, "wb").write(b"\\xef\\xbb\\xbfgood\\r\\nbad \\xff\\n" + b"x" * 5000 + b"\\nnul\\x00\\nlast")
>>> for item in read_lines(path, "t.txt", max_line_bytes=1024):
...     print(item)
(1, 'good')
t.txt:2: invalid UTF-8 (byte 0xff at column 5)
t.txt:3: line too long (over 1024 bytes)
t.txt:4: binary data (NUL byte at column 4)
(5, 'last')
>>> _ = open(path, "wb").write("Résumé\\nzwei".encode("utf-16"))
>>> list(read_lines(path, "t.txt", max_line_bytes=1024))
[(1, 'Résumé'), (2, 'zwei')]
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from ingest.source_types import Rejection

_SKIP_CHUNK = 1 << 16
_BOM = b"\xef\xbb\xbf"


def detect_encoding(head: bytes) -> str:
    """"utf-8", or the UTF-16 variant a file's first bytes show (a BOM, or every other byte zero).

    >>> detect_encoding("a,b".encode("utf-16-le")), detect_encoding(b"\\xff\\xfea\\x00"), detect_encoding(b"a,b")
    ('utf-16-le', 'utf-16', 'utf-8')
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    sample = head[:4096 - 4096 % 2]
    if len(sample) >= 4:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
            return "utf-16-be"
    return "utf-8"


class _Transcoded:
    """A binary ``readline`` over a UTF-16 file that returns UTF-8 (sizes count characters)."""

    def __init__(self, raw: BinaryIO, encoding: str) -> None:
        self._text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="\n")

    def readline(self, size: int = -1) -> bytes:
        return self._text.readline(size).encode("utf-8", "surrogatepass")


@contextmanager
def open_utf8(path: str) -> Iterator[BinaryIO]:
    """The file as UTF-8 bytes: itself, or transcoded from UTF-16."""
    with open(path, "rb") as raw:
        encoding = detect_encoding(raw.read(4096))
        raw.seek(0)
        yield raw if encoding == "utf-8" else _Transcoded(raw, encoding)  # type: ignore[misc]


def read_lines(path: str, source: str, max_line_bytes: int) -> Iterator[tuple[int, str] | Rejection]:
    """Yield ``(line_number, text)`` without the line ending, or a Rejection for the line."""
    with open_utf8(path) as handle:
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
            skip_to_line_end(handle)
            yield Rejection(source, number, f"line too long (over {max_line_bytes} bytes)")
            continue
        reason = line_problem(raw)
        if reason:
            yield Rejection(source, number, reason)
            continue
        yield number, raw.decode("utf-8").rstrip("\r\n")


def line_problem(raw: bytes) -> str | None:
    """Why a line's bytes are not text (invalid UTF-8, a NUL byte), or None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    if "\x00" in text:
        return f"binary data (NUL byte at column {text.index(chr(0)) + 1})"
    return None


def skip_to_line_end(handle: BinaryIO) -> None:
    """Read the rest of an over-long line in fixed chunks: memory stays bounded."""
    while True:
        chunk = handle.readline(_SKIP_CHUNK)
        if not chunk or chunk.endswith(b"\n"):
            return


def read_head(path: str, size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of a file, for sniffing its format."""
    with open(path, "rb") as handle:
        return handle.read(size)
