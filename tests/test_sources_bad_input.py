"""Bad input never raises and never costs the good records of the same file.

Each case writes a file into tmp_path (binary and large ones are generated here,
not committed), reads it, and checks the exact papers kept and the exact
rejections reported (line and reason).
"""

from __future__ import annotations

import gzip
import json
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.records import Paper
from ingest.sources import ReadOptions, Rejection, read_source

ABSTRACT = "An abstract that is long enough to be read as one on a page of abstracts. " * 3
FIVE_MB = 5 * 1024 * 1024


def _jsonl(*rows: object) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def _good(key: str) -> dict:
    return {"id": key, "title": f"Title {key}", "abstract": f"Abstract of {key}."}


def _parquet_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": ["a"], "abstract": ["A."]}), sink)
    return sink.getvalue().to_pybytes()


CASES = {
    # name: (file name, content, ids kept, [(line, reason)])
    "binary-nul": ("image.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, [],
                   [(None, "binary file: not text (NUL or undecodable bytes)")]),
    "binary-named-jsonl": ("data.jsonl", bytes(range(256)) * 8, [],
                           [(None, "binary file: not text (NUL or undecodable bytes)")]),
    "undecodable": ("latin.txt", "Résumé über façade ".encode("latin-1"), [],
                    [(None, "binary file: not text (NUL or undecodable bytes)")]),
    "gzip": ("papers.jsonl", gzip.compress(_jsonl(_good("a"))), [], [(None, "binary file: a gzip file; decompress it first")]),
    "pdf": ("paper.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", [],
            [(None, "binary file: a PDF file; export the abstracts as text, JSON or CSV")]),
    "malformed-json-line": ("c.jsonl", _jsonl(_good("a"), b'{"id": "b", oops}', _good("c")), ["a", "c"],
                            [(2, "malformed JSON: Expecting property name enclosed in double quotes (column 13)")]),
    "json-line-not-object": ("c.jsonl", _jsonl(_good("a"), [1, 2], "text"), ["a"],
                             [(2, "expected an object with named fields, got list"),
                              (3, "expected an object with named fields, got str")]),
    "no-abstract": ("c.jsonl", _jsonl(_good("a"), {"id": "b", "title": "No abstract", "abstract": "  "}, _good("c")),
                    ["a", "c"], [(2, "record b has no abstract")]),
    "empty": ("empty.jsonl", b"", [], [(None, "empty file")]),
    "whitespace-only": ("blank.txt", b"\n  \n\t\n", [], [(None, "empty file")]),
    "invalid-utf8-jsonl": ("c.jsonl", _jsonl(_good("a"), b'{"id": "b", "abstract": "caf\xe9"}', _good("c")),
                           ["a", "c"], [(2, "invalid UTF-8 (byte 0xe9 at column 29)")]),
    "invalid-utf8-page": ("page.txt", b"Daily curated AI research papers with translations\n" + ABSTRACT.encode()
                          + b"\n" + b"\xff" + ABSTRACT.encode() + b"\nSecond " + ABSTRACT.encode() + b"\n",
                          ["doc"] * 2, [(3, "invalid UTF-8 (byte 0xff at column 1)")]),
    "invalid-utf8-json-array": ("a.json", b'[{"id": "a", "abstract": "A."}, {"id": "b", "abstract": "caf\xe9"},'
                                b' {"id": "c", "abstract": "C."}]', ["a", "c"],
                                [(1, "invalid UTF-8 in record b")]),
    "invalid-utf8-csv": ("c.csv", b"id,abstract\na,A.\nb,caf\xe9\nc,C.\n", ["a", "c"],
                         [(3, "invalid UTF-8 (byte 0xe9 at column 6)")]),
    "line-too-long-jsonl": ("c.jsonl", _jsonl(_good("a"), {"id": "big", "abstract": "x" * FIVE_MB}, _good("c")),
                            ["a", "c"], [(2, "line too long (over 1000000 bytes)")]),
    "line-too-long-page": ("page.txt", b"Daily curated AI research papers with translations\n" + b"y " * (FIVE_MB // 2)
                           + b"\n" + ABSTRACT.encode() + b"\n", ["doc"], [(2, "line too long (over 1000000 bytes)")]),
    "line-too-long-csv": ("c.csv", b"id,abstract\na,A.\nbig," + b"z" * FIVE_MB + b"\nc,C.\n", ["a", "c"],
                          [(3, "record too long (over 1000000 bytes)")]),
    "record-too-long-json-array": ("a.json", b'[\n {"id": "a", "abstract": "A."},\n {"id": "big", "abstract": "'
                                   + b"x" * FIVE_MB + b'"},\n {"id": "c", "abstract": "C."}\n]', ["a", "c"],
                                   [(3, "record too long")]),
    "malformed-json-array-element": ("a.json", b'[\n  {"id": "a", "abstract": "A."},\n  {"id": "b" "abstract": "B."},'
                                     b'\n  {"id": "c", "abstract": "C."}\n]\n', ["a", "c"],
                                     [(3, "malformed JSON: Expecting ',' delimiter")]),
    "truncated-json-array": ("a.json", b'[{"id": "a", "abstract": "A."}, {"id": "b", "abs', ["a"],
                             [(1, "unexpected end of file inside the JSON array")]),
    "csv-unterminated-quote": ("c.csv", b'id,abstract\na,A.\nb,"never closed\nc,C.\n', ["a", "c"],
                               [(3, "quoted field never closed")]),
    "csv-bad-quoting": ("c.csv", b'id,abstract\na,A.\nb,"B."x\nc,C.\n', ["a", "c"],
                        [(3, "malformed CSV: ',' expected after '\"'")]),
    "csv-without-abstract-column": ("c.csv", b"id,name\na,A.\n", [],
                                    [(1, "header names no abstract/summary/text column")]),
    "corrupt-parquet": ("p.parquet", _parquet_bytes()[:-40], [], [(None, "unreadable Parquet file: ")]),
    "dump-id-without-abstract": ("dump.txt", b"arxiv_id\nstringlengths\n9\n12\nabstract\nstringlengths\n431\n13.8k\n"
                                 b"2305.14314\n" + ABSTRACT.encode() + b"\n2305.00001\n2106.09685\n"
                                 + ABSTRACT.encode() + b"\n", ["2305.14314", "2106.09685"],
                                 [(11, "record 2305.00001 has no abstract")]),
    "page-title-without-abstract": ("page.txt", b"Get trending papers in your email inbox!\nSubscribeFirst Title\n"
                                    + ABSTRACT.encode() + b"\nOrphan Title\nThird Title\n" + ABSTRACT.encode()
                                    + b"\nTrailing Title\n", ["doc"] * 2,
                                    [(4, "title without an abstract: 'Orphan Title'"),
                                     (7, "title without an abstract: 'Trailing Title'")]),
    "chrome-only-page": ("page.txt", b"new\n\nSubscribe\n\nDaily Papers\n\nDec 8\n", [],
                         [(None, "no papers found (read as pages)")]),
    "unrecognised": ("README.md", b"# My notes\n\nSome text about papers.\n", [],
                     [(None, "unrecognised format: expected a seed page, JSON Lines, JSON, CSV, TSV or Parquet "
                             "(--format forces one)")]),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_reported_and_good_records_kept(tmp_path, case):
    name, content, kept, rejected = CASES[case]
    path = tmp_path / name
    path.write_bytes(content)
    records = list(read_source(str(path)))
    papers = [r for r in records if isinstance(r, Paper)]
    assert [p.paper_id if not p.paper_id.startswith("doc-") else "doc" for p in papers] == kept
    reasons = [(r.line, r.reason) for r in records if isinstance(r, Rejection)]
    if case == "corrupt-parquet":
        reasons = [(line, reason[:len("unreadable Parquet file: ")]) for line, reason in reasons]
    assert reasons == rejected
    assert all(r.source == str(path) for r in records if isinstance(r, Rejection))


@pytest.mark.parametrize("missing", ["no-such-file.jsonl", "no-such-dir/"])
def test_missing_paths_are_rejected(tmp_path, missing):
    spec = str(tmp_path / missing)
    assert list(read_source(spec)) == [Rejection(spec, None, "no such file or directory")]


def test_an_empty_directory_is_reported(tmp_path):
    (tmp_path / ".only-hidden").write_text("{}")
    assert list(read_source(str(tmp_path))) == [Rejection(str(tmp_path), None, "directory holds no readable files")]


def test_a_long_line_is_skipped_in_bounded_memory(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_bytes(_jsonl({"id": "big", "abstract": "x" * (4 * FIVE_MB)}, _good("a")))
    tracemalloc.start()
    try:
        records = list(read_source(str(path), ReadOptions(max_line_bytes=100_000)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(r.line, r.reason) for r in records if isinstance(r, Rejection)] == [(1, "line too long (over 100000 bytes)")]
    assert [r.paper_id for r in records if isinstance(r, Paper)] == ["a"]
    assert peak < 1_000_000, peak  # the 20 MB line was never held


def test_a_directory_reports_each_bad_file_and_keeps_the_rest(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "good.jsonl").write_bytes(_jsonl(_good("a"), b"{broken"))
    (tmp_path / "sub" / "more.csv").write_bytes(b"id,abstract\nb,B.\n")
    (tmp_path / "sub" / "empty.txt").write_bytes(b"")
    (tmp_path / "blob.bin").write_bytes(b"\x00" * 64)
    (tmp_path / ".hidden.jsonl").write_bytes(b"\x00")  # hidden: never read
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_bytes(b"\x00")
    records = list(read_source(str(tmp_path)))
    assert [(p.paper_id, p.sources) for p in records if isinstance(p, Paper)] == [
        ("a", ("good.jsonl",)), ("b", ("sub/more.csv",))]
    assert [(r.source.removeprefix(str(tmp_path) + "/"), r.line, r.reason[:20])
            for r in records if isinstance(r, Rejection)] == [
        ("blob.bin", None, "binary file: not tex"), ("good.jsonl", 2, "malformed JSON: Expe"),
        ("sub/empty.txt", None, "empty file")]
