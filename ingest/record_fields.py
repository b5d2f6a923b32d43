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
from datetime import datetime
from email.utils import parsedate
from typing import Any

from ingest.records import Paper, make_paper, normalise_date, parse_arxiv_id
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
    """The paper in ``row``, or a Rejection saying what is wrong with it."""
    if not isinstance(row, dict):
        return Rejection(source, line, f"expected an object with named fields, got {type(row).__name__}")
    fields = {str(k).lower(): v for k, v in row.items()}
    raw_id = _raw_id(fields)
    if any(_SURROGATE.search(v) for v in fields.values() if isinstance(v, str)):
        return Rejection(source, line, "invalid UTF-8 in record" + (f" {raw_id}" if raw_id else ""))
    try:
        return make_paper(raw_id=raw_id, title=_text(_first(fields, TITLE_KEYS)),
                          abstract=_text(_first(fields, ABSTRACT_KEYS)), authors=_authors(fields),
                          date=_date(fields), categories=_categories(_first(fields, CATEGORY_KEYS)),
                          url=_text(_first(fields, URL_KEYS)), source=source)
    except ValueError:
        return Rejection(source, line, "record" + (f" {raw_id}" if raw_id else "") + " has no abstract")


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
    """The snapshot's ``update_date`` (or ``updated``), which ``since`` also considers."""
    return normalise_date(_text(row.get("update_date") or row.get("updated")))


def _first(fields: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((fields[k] for k in keys if fields.get(k) not in (None, "", [])), None)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a numeric id column read as float
    return value if isinstance(value, str) else str(value)


def _raw_id(fields: dict[str, Any]) -> str:
    external = fields.get("externalids")
    if isinstance(external, dict) and external.get("ArXiv"):
        return str(external["ArXiv"])
    raw = _text(_first(fields, ID_KEYS)).strip()
    versions = fields.get("versions")
    if raw and isinstance(versions, list) and versions and parse_arxiv_id(raw) == (raw, ""):
        last = versions[-1].get("version", "") if isinstance(versions[-1], dict) else str(versions[-1])
        raw += last if re.fullmatch(r"v\d+", last or "") else ""
    return raw


def _authors(fields: dict[str, Any]) -> list[str] | str:
    parsed = fields.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        # [last, first, suffix] -> "first last suffix"
        return [" ".join(p for p in (a[1:2] + a[:1] + a[2:3]) if p) for a in parsed if isinstance(a, list)]
    value = _first(fields, AUTHOR_KEYS)
    if isinstance(value, list):
        return [_author_name(a) for a in value]
    return _text(value)


def _author_name(value: Any) -> str:
    if isinstance(value, dict):
        name = value.get("name") or " ".join(str(value.get(k, "")) for k in ("first", "last"))
        return str(name)
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return _text(value)


def _categories(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v]
    return [c for c in re.split(r"[\s,;]+", _text(value)) if c]


def _date(fields: dict[str, Any]) -> str:
    value = _first(fields, DATE_KEYS)
    versions = fields.get("versions")
    if value is None and isinstance(versions, list) and versions and isinstance(versions[0], dict):
        value = versions[0].get("created")
    if value is None:
        value = fields.get("update_date")
    return parse_date(_text(value))


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
