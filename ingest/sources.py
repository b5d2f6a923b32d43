"""One entry point for every paper source: ``read_source(spec, options)``.

A spec is a file, a directory (walked recursively in sorted order; hidden files and
the ``queries.jsonl``/``qrels/`` beside a BEIR ``corpus.jsonl`` are skipped, and so is any
folder holding a Chroma index), an
``arxiv:<query or ids>`` or an ``hf:<dataset>[:<split>]`` spec. A file's format comes
from ``options.format``, else from its extension and first 64 KB (see
:func:`sniff_format`). Bad input never raises: it is yielded as a :class:`Rejection`
naming the file and line, and reading goes on. Only remote sources raise, with
``models.errors.UnavailableError``, when the service cannot be reached.

``Paper.sources`` holds the file's path relative to the spec's directory (its name
for a file spec; the spec itself for remote sources); ``Rejection.source`` holds the
path as the user can open it.

>>> papers = [r for r in read_source("data/samples") if isinstance(r, Paper)]
>>> len(papers), len({p.fingerprint for p in papers})
(184, 180)
>>> list(read_source("no/such.jsonl"))
[Rejection(source='no/such.jsonl', line=None, reason='no such file or directory')]
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from ingest import formats_pages as pages
from ingest.formats_tabular import READERS as TABULAR_READERS
from ingest.record_fields import ABSTRACT_KEYS
from ingest.records import Paper
from ingest.remote import is_remote, read_remote
from ingest.source_types import FORMATS, ReadOptions, Rejection
from ingest.textlines import detect_encoding, read_head, read_lines

__all__ = ["FORMATS", "Paper", "ReadOptions", "Rejection", "read_source", "sniff_format"]

_PAGE_PARSERS = {"abstract-lines": pages.parse_abstract_lines, "dump": pages.parse_dump, "pages": pages.parse_pages}
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv",
               ".parquet": "parquet"}
_MAGIC = {b"%PDF": "a PDF file; export the abstracts as text, JSON or CSV",
          b"\x1f\x8b": "a gzip file; decompress it first", b"PK\x03\x04": "a zip archive; extract it first"}
_UNRECOGNISED = ("unrecognised format: expected a seed page, JSON Lines, JSON, CSV, TSV or Parquet "
                 "(--format forces one)")


def read_source(spec: str, options: ReadOptions = ReadOptions()) -> Iterator[Paper | Rejection]:
    """Yield every paper of ``spec`` that passes ``options``' filters, and a Rejection per bad input."""
    if is_remote(spec):
        yield from read_remote(spec, options)
        return
    root = Path(spec)
    if root.is_dir():
        count = 0
        for count, item in enumerate(_walk(root), 1):
            if isinstance(item, Rejection):
                yield item
            else:
                yield from read_file(item, item.relative_to(root).as_posix(), options)
        if count == 0:
            yield Rejection(spec, None, "directory holds no readable files")
    elif root.is_file():
        yield from read_file(root, root.name, options)
    else:
        yield Rejection(spec, None, "not a regular file" if root.exists() else "no such file or directory")


def read_file(path: Path, name: str, options: ReadOptions = ReadOptions()) -> Iterator[Paper | Rejection]:
    """The records of one file; ``name`` goes into ``Paper.sources``.

    Nothing raises out of here: a failure no parser foresaw ends this file with a Rejection
    (its records so far are kept) and the next file is read.
    """
    shown = str(path)
    try:
        if not path.is_file():  # a FIFO would block the read forever; a socket or device is no paper
            yield Rejection(shown, None, "broken symbolic link" if path.is_symlink() and not path.exists()
                            else "not a regular file")
            return
        fmt, reason = sniff_format(path, options.format)
        if fmt is None:
            yield Rejection(shown, None, reason)
            return
        for record in _records(path, name, fmt, options):
            yield replace(record, source=shown) if isinstance(record, Rejection) else record
    except OSError as exc:
        yield Rejection(shown, None, f"cannot read: {exc.strerror or exc}")
    except RecursionError:
        yield Rejection(shown, None, f"nested too deeply (limit {options.max_depth} levels); the rest of the file "
                                     "was not read")
    except Exception as exc:  # noqa: BLE001 - one file's surprise must not cost the other files
        yield Rejection(shown, None, f"unexpected {type(exc).__name__} while reading: {exc}; the rest of the file "
                                     "was not read")


def _records(path: Path, name: str, fmt: str, options: ReadOptions) -> Iterator[Paper | Rejection]:
    if fmt in TABULAR_READERS:
        yield from TABULAR_READERS[fmt](str(path), name, options)
        return
    lines = read_lines(str(path), name, options.max_line_bytes)
    count = 0
    for count, record in enumerate(_PAGE_PARSERS[fmt](lines, name), 1):
        if isinstance(record, Rejection) or options.keeps(record):
            yield record
    if count == 0:
        yield Rejection(name, None, f"no papers found (read as {fmt})")


def sniff_format(path: Path, forced: str | None = None) -> tuple[str | None, str]:
    """``(format, "")`` for a readable file, else ``(None, reason)``.

    Parquet is known by its magic bytes; UTF-16 (a BOM, or every other byte zero) is text;
    a known binary signature, NUL bytes in most lines or more than 10% undecodable bytes in
    the first 64 KB mean a binary file (a stray NUL byte only costs the line holding it).
    Then the extension (.jsonl/.ndjson, .csv, .tsv, .parquet) decides, then the content: a
    leading ``[`` is JSON, ``{`` JSON Lines (or one JSON document), a header naming an
    abstract column CSV/TSV, else one of the seed page formats.
    """
    head = read_head(str(path))
    if head.startswith(b"PAR1") and forced in (None, "parquet"):
        return "parquet", ""
    encoding = detect_encoding(head)
    if encoding == "utf-8":
        text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    else:
        text = head.decode(encoding, errors="replace").removeprefix("\ufeff")
    if not text.strip():
        return None, "empty file"
    magic = next((why for m, why in _MAGIC.items() if head.startswith(m)), None)
    if magic or (encoding == "utf-8" and (_mostly_nul_lines(head) or text.count("\ufffd") > len(text) // 10)):
        return None, "binary file: " + (magic or "not text (NUL or undecodable bytes)")
    if forced:
        return forced, ""
    by_extension = _EXTENSIONS.get(path.suffix.lower())
    found = by_extension or _sniff_text(text.lstrip())
    return (found, "") if found else (None, _UNRECOGNISED)


def _sniff_text(text: str) -> str | None:
    lines = text.split("\n")
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        return "jsonl" if _is_json_object(lines[0]) or (len(lines) > 1 and lines[1].lstrip().startswith("{")) \
            else "json"
    complete = lines[:-1] if len(lines) > 1 else lines  # the last line may be cut by the 64 KB head
    header = complete[0] if complete else ""
    for delimiter, fmt in (("\t", "tsv"), (",", "csv")):
        if delimiter in header and _names_abstract(header, delimiter):
            return fmt
    return pages.sniff_page_format(complete[:200])


def _mostly_nul_lines(head: bytes) -> bool:
    lines = head.split(b"\n")
    return 2 * sum(b"\x00" in line for line in lines) > len(lines)


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def _names_abstract(header: str, delimiter: str) -> bool:
    cells = next(csv.reader(io.StringIO(header), delimiter=delimiter), [])
    return any(c.strip().lower() in ABSTRACT_KEYS for c in cells)


def _walk(root: Path) -> Iterator[Path | Rejection]:
    """Files under ``root`` in sorted order, without hidden ones, BEIR's non-corpus files and indexes;
    a folder that cannot be listed or looked into is a Rejection, and its siblings are still walked."""
    problems: list[Rejection] = []

    def unreadable(exc: OSError, where: Path | None = None) -> None:
        shown = str(where or exc.filename or root)
        problems.append(Rejection(shown, None, f"cannot read directory: {exc.strerror or exc}"))

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        yield from problems
        problems.clear()
        kept = []
        for d in sorted(dirs):
            path = Path(folder) / d
            try:
                if not d.startswith(".") and not _beir_aux(path) and not _is_index(path):
                    kept.append(d)
            except OSError as exc:  # a folder we may not look into
                unreadable(exc, path)
        dirs[:] = kept
        yield from problems
        problems.clear()
        for name in sorted(files):
            path = Path(folder) / name
            if not name.startswith(".") and not _beir_aux(path):
                yield path
    yield from problems


def _beir_aux(path: Path) -> bool:
    # A BEIR dataset keeps its questions beside the corpus: they are not papers.
    if path.name == "queries.jsonl":
        return (path.parent / "corpus.jsonl").exists()
    return path.name == "qrels" and (path.parent / "corpus.jsonl").exists()


def _is_index(folder: Path) -> bool:
    # `python -m ingest .` run where the default ./index lives must not read Chroma's own files as papers.
    return (folder / "chroma.sqlite3").exists()
