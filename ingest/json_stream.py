"""Records of a JSON file without loading a whole array: elements are decoded one by one.

A JSON array is read in 64 KB chunks and decoded element by element with
``json.JSONDecoder.raw_decode``; memory stays near the largest element (capped).
A malformed element is reported with the line it starts on, and reading resumes
at the next element that starts a line (pretty-printed files) or follows ``},``.
Undecodable bytes are kept as surrogates so that only the record holding them is
rejected (see :mod:`ingest.record_fields`). A file holding one object is loaded
whole (size-capped): the object is a record, or wraps a list of records. An
element nested deeper than ``max_depth`` is rejected, also one so deep (100,000
brackets) that Python's decoder gives up with a RecursionError.

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

import io
import json
import os
import re
from collections.abc import Iterator
from typing import IO, Any

from ingest.record_fields import nesting_depth, records_in
from ingest.source_types import Rejection
from ingest.textlines import detect_encoding, read_head

_CHUNK = 1 << 16
_DOCUMENT_FACTOR = 64  # a single-object document may be this many times max_line_bytes
_ELEMENT_STARTS = (re.compile(r"\n[ \t]*\{"), re.compile(r"[}\]]\s*,\s*\{"))
_TAIL = 64
_DECODER = json.JSONDecoder()
_WRAPPED_LIST = re.compile(r'\s*\{\s*"[^"\\]{1,100}"\s*:\s*\[')  # {"papers": [ ...


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


def iter_json_rows(path: str, source: str, max_bytes: int, max_depth: int = 32) -> Iterator[tuple[int | None, Any]]:
    """Yield ``(line, record)`` for each element, or ``(line, Rejection)`` for a bad one."""
    encoding = detect_encoding(read_head(path, 4096))
    with open(path, encoding="utf-8-sig" if encoding == "utf-8" else encoding, errors="surrogateescape") as handle:
        buffer = _Buffer(handle)
        first = buffer.peek("\ufeff \t\r\n")
        if first == "[":
            buffer.advance(buffer.pos + 1)
            rows = _array(buffer, source, max_bytes, max_depth)
        elif first == "{":
            rows = _document(path, handle, source, max_bytes, max_depth)
        else:
            yield 1, Rejection(source, 1, "not JSON: expected an array or an object")
            return
        for line, row in rows:
            if not isinstance(row, Rejection) and nesting_depth(row, max_depth) > max_depth:
                row = Rejection(source, line, too_deep(max_depth))
            yield line, row


def too_deep(max_depth: int) -> str:
    return f"nested too deeply (more than {max_depth} levels of lists and objects)"


def _array(buffer: _Buffer, source: str, max_bytes: int, max_depth: int) -> Iterator[tuple[int | None, Any]]:
    while True:
        char = buffer.peek(" \t\r\n,")
        if char in ("]", ""):
            if not char:
                yield buffer.line, Rejection(source, buffer.line, "unexpected end of file inside the JSON array")
            return
        try:
            row, end = _DECODER.raw_decode(buffer.text, buffer.pos)
        except RecursionError:  # deeper than Python's decoder goes: far over any depth limit
            yield buffer.line, Rejection(source, buffer.line, too_deep(max_depth))
            if not _resync(buffer):
                return
            continue
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


def _document(path: str, handle: IO[str], source: str, max_bytes: int,
              max_depth: int) -> Iterator[tuple[int | None, Any]]:
    if os.path.getsize(path) > _DOCUMENT_FACTOR * max_bytes:
        yield None, Rejection(source, None, "JSON object too large to load whole; use JSON Lines or a JSON array")
        return
    handle.seek(0)
    text = handle.read().lstrip("\ufeff")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, Rejection(source, exc.lineno, f"malformed JSON: {exc.msg}")
        return
    except RecursionError:  # too deep to load whole: read a wrapped list of records element by element
        wrapped = _WRAPPED_LIST.match(text)
        if not wrapped:
            yield None, Rejection(source, None, too_deep(max_depth))
            return
        buffer = _Buffer(io.StringIO(text))
        buffer.fill()
        buffer.advance(wrapped.end())
        for line, row in _array(buffer, source, max_bytes, max_depth):
            yield line, row["row"] if isinstance(row, dict) and isinstance(row.get("row"), dict) else row
        return
    for row in records_in(document) if isinstance(document, dict) else [document]:
        yield None, row
