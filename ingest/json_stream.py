"""Records of a JSON file without loading a whole array: elements are decoded one by one.

A JSON array is read in 64 KB chunks and decoded element by element with
``json.JSONDecoder.raw_decode``; memory stays near the largest element (capped).
A malformed element is reported with the line it starts on, and reading resumes
at the next element that starts a line (pretty-printed files) or follows ``},``.
Undecodable bytes are kept as surrogates so that only the record holding them is
rejected (see :mod:`ingest.record_fields`). A file holding one object is loaded
whole (size-capped): the object is a record, or wraps a list of records.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "a.json")
>>> _ = open(path, "w").write('[\\n {"id": 1},\\n {"id": 2,,},\\n {"id": 3}\\n]')
>>> for line, row in iter_json_rows(path, "a.json", 1 << 20):
...     print(line, row)
2 {'id': 1}
3 a.json:3: malformed JSON: Expecting property name enclosed in double quotes
4 {'id': 3}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import IO, Any

from ingest.record_fields import records_in
from ingest.source_types import Rejection

_CHUNK = 1 << 16
_DOCUMENT_FACTOR = 64  # a single-object document may be this many times max_line_bytes
_ELEMENT_STARTS = (re.compile(r"\n[ \t]*\{"), re.compile(r"\}\s*,\s*\{"))
_TAIL = 64
_DECODER = json.JSONDecoder()


class _Buffer:
    """A sliding window over a text file that counts the lines it moves past."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle, self.text, self.pos, self.line, self.eof = handle, "", 0, 1, False

    def fill(self) -> bool:
        data = "" if self.eof else self.handle.read(_CHUNK)
        self.eof = not data
        self.text, self.pos = self.text[self.pos:] + data, 0
        return bool(data)

    def advance(self, end: int) -> None:
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def peek(self, skip: str = " \t\r\n") -> str:
        """The next character not in ``skip`` ('' at end of file), moving past the skipped ones."""
        while True:
            end = self.pos
            while end < len(self.text) and self.text[end] in skip:
                end += 1
            self.advance(end)
            if self.pos < len(self.text) or not self.fill():
                return self.text[self.pos:self.pos + 1]


def iter_json_rows(path: str, source: str, max_bytes: int) -> Iterator[tuple[int | None, Any]]:
    """Yield ``(line, record)`` for each element, or ``(line, Rejection)`` for a bad one."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as handle:
        buffer = _Buffer(handle)
        first = buffer.peek()
        if first == "[":
            buffer.advance(buffer.pos + 1)
            yield from _array(buffer, source, max_bytes)
        elif first == "{":
            yield from _document(path, handle, source, max_bytes)
        else:
            yield 1, Rejection(source, 1, "not JSON: expected an array or an object")


def _array(buffer: _Buffer, source: str, max_bytes: int) -> Iterator[tuple[int | None, Any]]:
    while True:
        char = buffer.peek(" \t\r\n,")
        if char in ("]", ""):
            if not char:
                yield buffer.line, Rejection(source, buffer.line, "unexpected end of file inside the JSON array")
            return
        try:
            row, end = _DECODER.raw_decode(buffer.text, buffer.pos)
        except json.JSONDecodeError as exc:
            if _incomplete(exc, buffer) and len(buffer.text) - buffer.pos <= max_bytes and buffer.fill():
                continue  # the element goes on in the next chunk
            reason = ("record too long" if len(buffer.text) - buffer.pos > max_bytes
                      else "unexpected end of file inside the JSON array" if buffer.eof and _incomplete(exc, buffer)
                      else f"malformed JSON: {exc.msg}")
            yield buffer.line, Rejection(source, buffer.line, reason)
            if not _resync(buffer):
                return
            continue
        line = buffer.line
        buffer.advance(end)
        yield line, row


def _incomplete(exc: json.JSONDecodeError, buffer: _Buffer) -> bool:
    # An error at the end of the window (or an open string) may just be a chunk boundary.
    return exc.pos >= len(buffer.text) - 1 or exc.msg.startswith("Unterminated string")


def _resync(buffer: _Buffer) -> bool:
    """Move to the start of the next element; False when there is none."""
    start = buffer.pos + 1
    while True:
        found = [m.end() - 1 for m in (p.search(buffer.text, start) for p in _ELEMENT_STARTS) if m]
        if found:
            buffer.advance(min(found))
            return True
        # Keep a short tail: a "}" or newline that pairs with the next chunk's ", {".
        buffer.advance(max(start, len(buffer.text) - _TAIL))
        if not buffer.fill():
            return False
        start = buffer.pos


def _document(path: str, handle: IO[str], source: str, max_bytes: int) -> Iterator[tuple[int | None, Any]]:
    if os.path.getsize(path) > _DOCUMENT_FACTOR * max_bytes:
        yield None, Rejection(source, None, "JSON object too large to load whole; use JSON Lines or a JSON array")
        return
    handle.seek(0)
    try:
        document = json.load(handle)
    except json.JSONDecodeError as exc:
        yield exc.lineno, Rejection(source, exc.lineno, f"malformed JSON: {exc.msg}")
        return
    for row in records_in(document) if isinstance(document, dict) else [document]:
        yield None, row
