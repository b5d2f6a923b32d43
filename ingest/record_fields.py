"""Map one tabular record (a dict with the usual field names) onto a :class:`Paper`.

Recognised names (case-insensitive): ids ``arxiv_id``/``id``/``paperId``/``_id`` (and
Semantic Scholar's ``externalIds.ArXiv``), ``title``, ``abstract``/``summary``/``text``,
``authors`` (a string, a list of names or of ``{"name": ...}``, or the arXiv snapshot's
``authors_parsed``), ``published``/``date``/``update_date``/``year`` (and the snapshot's
first ``versions[].created``), ``categories``, ``url``/``doi``. The snapshot's last
``versions[].version`` becomes the paper's version.

>>> row = {"id": "0704.0001", "title": "Calculation of  prompt diphoton production",
...        "abstract": "  A fully differential calculation. ", "categories": "hep-ph",
...        "authors_parsed": [["Balázs", "C.", ""], ["Berger", "E. L.", ""]],
...        "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"},
...                     {"version": "v2", "created": "Tue, 24 Jul 2007 20:10:27 GMT"}],
...        "update_date": "2008-11-13"}
>>> p = row_to_paper(row, "snap.json", 1)
>>> p.paper_id, p.version, p.authors, p.date, p.categories, row_update_date(row)
('0704.0001', 'v2', ('C. Balázs', 'E. L. Berger'), '2007-04-02', ('hep-ph',), '2008-11-13')
>>> row_to_paper({"_id": "4983", "title": "T"}, "corpus.jsonl", 7)
Rejection(source='corpus.jsonl', line=7, reason='record 4983 has no abstract')
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from email.utils import parsedate
from typing import Any

from ingest.records import FieldTooLong, Paper, make_paper, normalise_date, parse_arxiv_id
from ingest.source_types import Rejection

ID_KEYS = ("arxiv_id", "arxivid", "id", "paper_id", "paperid", "_id", "doc_id", "docid", "corpus_id", "corpusid")
TITLE_KEYS = ("title", "paper_title")
ABSTRACT_KEYS = ("abstract", "summary", "text", "abstract_text", "paperabstract")
AUTHOR_KEYS = ("authors", "author", "creators")
DATE_KEYS = ("published", "date", "publication_date", "publicationdate", "pub_date", "created", "year")
CATEGORY_KEYS = ("categories", "category", "primary_category", "subjects")
URL_KEYS = ("url", "link", "abs_url", "doi")
KNOWN_KEYS = frozenset(ID_KEYS + TITLE_KEYS + ABSTRACT_KEYS + AUTHOR_KEYS + DATE_KEYS + CATEGORY_KEYS + URL_KEYS
                       + ("authors_parsed", "update_date", "versions", "externalids"))
_SURROGATE = re.compile(r"[\udc80-\udcff]")  # undecodable bytes kept by errors="surrogateescape"
_DATE_FORMATS = ("%m/%d/%Y", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y")


def row_to_paper(row: Any, source: str, line: int | None) -> Paper | Rejection:
    """The paper in ``row``, or a Rejection saying what is wrong with it.

    Fields of another type than expected are converted when that is unambiguous (a number
    id, a list of names, a list of abstract paragraphs, a Parquet date or timestamp, a Unix
    time) and otherwise rejected: never stored as a Python repr such as ``b'...'`` or ``['a']``.

    >>> p = row_to_paper({"id": 42, "abstract": ["Part one.", "Part two."], "date": 1684800000.0}, "t.parquet", 3)
    >>> p.paper_id, p.abstract, p.date
    ('42', 'Part one. Part two.', '2023-05-23')
    >>> row_to_paper({"id": 2.5, "abstract": "A."}, "t.parquet", 4).reason
    'record: id is the number 2.5, expected an identifier'
    >>> row_to_paper({"id": "x", "title": b"\\xff", "abstract": "A."}, "t.parquet", 5).reason
    'record x: title is bytes that are not UTF-8 text'
    """
    if not isinstance(row, dict):
        return Rejection(source, line, f"expected an object with named fields, got {type(row).__name__}")
    fields = {str(k).lower(): v for k, v in row.items()}
    try:
        raw_id = _raw_id(fields)
    except BadField as exc:
        return Rejection(source, line, f"record: {exc}")
    named = " " + raw_id[:80] if raw_id else ""
    if any(_SURROGATE.search(v) for v in fields.values() if isinstance(v, str)):
        return Rejection(source, line, "invalid UTF-8 in record" + named)
    try:
        return make_paper(raw_id=raw_id, title=_text(_first(fields, TITLE_KEYS), "title"),
                          abstract=_abstract(_first(fields, ABSTRACT_KEYS)), authors=_authors(fields),
                          date=_date(fields), categories=_categories(_first(fields, CATEGORY_KEYS)),
                          url=_text(_first(fields, URL_KEYS), "url"), source=source)
    except (BadField, FieldTooLong) as exc:
        return Rejection(source, line, f"record{named}: {exc}")
    except ValueError:
        return Rejection(source, line, f"record{named} has no abstract")


class BadField(ValueError):
    """A field whose type cannot be read as what it should hold; the message says which and why."""


def nesting_depth(value: Any, limit: int) -> int:
    """How deeply lists and objects nest in ``value``, counting at most to ``limit + 1``.

    Iterative, so a value nested 100,000 deep costs no recursion:
    ``nesting_depth({"a": [1, {"b": []}]}, 32)`` -> 4.
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def records_in(row: dict) -> list[Any]:
    """The record itself, or the first list of objects it wraps (``{"papers": [...]}``).

    >>> records_in({"data": [{"abstract": "A."}, {"abstract": "B."}]})
    [{'abstract': 'A.'}, {'abstract': 'B.'}]
    """
    if {str(k).lower() for k in row} & set(ABSTRACT_KEYS):
        return [row]
    for value in row.values():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            # The dataset-viewer API wraps each record as {"row_idx": n, "row": {...}}.
            return [v["row"] if isinstance(v.get("row"), dict) else v for v in value]
    return [row]


def row_update_date(row: dict) -> str:
    """The snapshot's ``update_date`` (or ``updated``), which ``since`` also considers ('' when unreadable)."""
    try:
        return normalise_date(date_value(row.get("update_date") or row.get("updated")))
    except BadField:
        return ""


def _first(fields: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((fields[k] for k in keys if fields.get(k) not in (None, "", [])), None)


def _kind(value: Any) -> str:
    return {list: "a list", tuple: "a list", dict: "an object", bool: "a boolean"}.get(type(value)) or \
        (f"the number {value!r}" if isinstance(value, (int, float)) else f"a {type(value).__name__}")


def _text(value: Any, name: str) -> str:
    """A text field: text, or bytes that are UTF-8 text; anything else is a :class:`BadField`."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise BadField(f"{name} is bytes that are not UTF-8 text") from None
    raise BadField(f"{name} is {_kind(value)}, expected text")


def _identifier(value: Any) -> str:
    """An id: text, or a whole number (a numeric id column; 123.0 read as float is 123)."""
    if isinstance(value, bool):
        raise BadField(f"id is {_kind(value)}, expected an identifier")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        raise BadField(f"id is {_kind(value)}, expected an identifier")
    return _text(value, "id").strip()


def _abstract(value: Any) -> str:
    """Text, or a list of paragraphs (PubMed's structured abstracts), joined by spaces."""
    if isinstance(value, (list, tuple)):
        return " ".join(_text(part, "abstract paragraph") for part in value)
    return _text(value, "abstract")


def _raw_id(fields: dict[str, Any]) -> str:
    external = fields.get("externalids")
    if isinstance(external, dict) and external.get("ArXiv"):
        return _identifier(external["ArXiv"])
    raw = _identifier(_first(fields, ID_KEYS)) if _first(fields, ID_KEYS) is not None else ""
    versions = fields.get("versions")
    if raw and isinstance(versions, list) and versions and parse_arxiv_id(raw) == (raw, ""):
        last = versions[-1].get("version", "") if isinstance(versions[-1], dict) else versions[-1]
        raw += last if isinstance(last, str) and re.fullmatch(r"v\d+", last) else ""
    return raw


def _authors(fields: dict[str, Any]) -> list[str] | str:
    parsed = fields.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        # [last, first, suffix] -> "first last suffix"
        return [" ".join(_text(p, "authors_parsed") for p in (a[1:2] + a[:1] + a[2:3]) if p)
                for a in parsed if isinstance(a, list)]
    value = _first(fields, AUTHOR_KEYS)
    if isinstance(value, (list, tuple)):
        return [_author_name(a, f"authors[{i}]") for i, a in enumerate(value)]
    return _text(value, "authors")


def _author_name(value: Any, name: str) -> str:
    if isinstance(value, dict):
        if value.get("name") is not None:
            return _text(value["name"], name + ".name")
        return " ".join(_text(value.get(k), f"{name}.{k}") for k in ("first", "last"))
    if isinstance(value, (list, tuple)):  # name parts
        return " ".join(_text(v, name) for v in value)
    return _text(value, name)


def _categories(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [_text(v, "categories") for v in value if v]
    return [c for c in re.split(r"[\s,;]+", _text(value, "categories")) if c]


def _date(fields: dict[str, Any]) -> str:
    value = _first(fields, DATE_KEYS)
    versions = fields.get("versions")
    if value is None and isinstance(versions, list) and versions and isinstance(versions[0], dict):
        value = versions[0].get("created")
    if value is None:
        value = fields.get("update_date")
    return date_value(value)


def date_value(value: Any) -> str:
    """ISO date of a date field of any type; '' when absent, :class:`BadField` when unreadable.

    Numbers are years (1000-2999) or Unix times in seconds or milliseconds; a string of
    digits is read the same way (8 digits: YYYYMMDD).

    >>> date_value(2023), date_value(1684800000.0), date_value("1684800000123"), date_value("20230523")
    ('2023', '2023-05-23', '2023-05-23', '2023-05-23')
    >>> date_value(123.5)
    Traceback (most recent call last):
    ...
    ingest.record_fields.BadField: date is the number 123.5, neither a year nor a Unix time
    """
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _numeric_date(value, f"date is {_kind(value)}")
    text = _text(value, "date").strip()
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    elif re.fullmatch(r"\d{9,13}(\.\d+)?", text):
        return _numeric_date(float(text), f"date {text!r} is")
    return parse_date(text)


def _numeric_date(value: float, what: str) -> str:
    if value == int(value) and 1000 <= value <= 2999:
        return str(int(value))
    for low, high, scale in ((1e8, 1e10, 1), (1e11, 1e13, 1000)):  # seconds (1973-2286), milliseconds
        if low <= value < high:
            return datetime.fromtimestamp(value / scale, tz=timezone.utc).date().isoformat()
    raise BadField(f"{what}, neither a year nor a Unix time")


def parse_date(text: str) -> str:
    """ISO date from ISO, RFC 2822 or a few common spellings; '' when unknown.

    >>> parse_date("Mon, 2 Apr 2007 19:18:42 GMT"), parse_date("May 23, 2023"), parse_date("soon")
    ('2007-04-02', '2023-05-23', '')
    """
    text = text.strip()
    iso = normalise_date(text)
    if iso:
        return iso
    rfc = parsedate(text)  # the snapshot's "versions" dates; returns None rather than raising
    if rfc:
        return f"{rfc[0]:04d}-{rfc[1]:02d}-{rfc[2]:02d}"
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return ""
