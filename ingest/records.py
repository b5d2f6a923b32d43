"""One record per paper: the dataclass, id normalisation, text cleaning, merging.

>>> p = make_paper(raw_id="arXiv:2210.13966v3", title=" A &amp; B ", abstract="Some  <i>text</i>.")
>>> (p.paper_id, p.version, p.title, p.abstract, p.url)
('2210.13966', 'v3', 'A & B', 'Some text.', 'https://arxiv.org/abs/2210.13966')
>>> make_paper(abstract="No id here.").paper_id.startswith("doc-")
True
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import unicodedata
from dataclasses import dataclass, field, replace

from ingest.untrusted import clean_untrusted, printable  # noqa: F401 - printable: re-exported for the edges

_NEW_ID = re.compile(r"(?:arxiv[:/]\s*)?(\d{4}\.\d{4,5})(v\d+)?$", re.I)
_OLD_ID = re.compile(r"(?:arxiv[:/]\s*)?([a-z][a-z\-]*(?:\.[a-z]{2})?/\d{7})(v\d+)?$", re.I)
_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf)/([^\s?#]+?)(?:\.pdf)?/?$", re.I)
_TAG = re.compile(r"<[^>]{1,200}>")
_SPACE = re.compile(r"\s+")
_FINGERPRINT_DROP = re.compile(r"https?://|[^a-z0-9]")


@dataclass(frozen=True)
class FieldLimits:
    """Largest accepted fields, in characters after cleaning (``authors``: names per paper).

    Generous for real records (arXiv abstracts stop at 1,920 characters, SciFact's at 10,000;
    big physics collaborations list a few thousand authors) and small enough that a full text
    or a runaway field is reported instead of stored.
    """

    paper_id: int = 512
    title: int = 2_000
    abstract: int = 100_000
    author: int = 1_000
    authors: int = 10_000
    category: int = 100
    categories: int = 500
    url: int = 2_000


LIMITS = FieldLimits()


class FieldTooLong(ValueError):
    """A field over its :class:`FieldLimits`; the message names it: 'abstract too long: 200,000 characters (limit 100,000)'."""


@dataclass(frozen=True)
class Paper:
    """A paper as the index keeps it; ``paper_id`` is the key everywhere."""

    paper_id: str
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    date: str = ""  # ISO: YYYY-MM-DD, YYYY-MM or YYYY; empty when unknown
    categories: tuple[str, ...] = ()
    url: str = ""
    version: str = ""  # arXiv version ("v3") kept apart from the id
    arxiv_id: str = ""
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def year(self) -> int | None:
        """The date's year, else the year an arXiv id encodes (``2305.14314`` -> 2023), else None."""
        if self.date[:4].isdigit():
            return int(self.date[:4])
        return arxiv_year(self.arxiv_id)

    @property
    def fingerprint(self) -> str:
        """Hash of the abstract reduced to letters and digits, for duplicate detection."""
        return text_fingerprint(self.abstract)

    @property
    def content_hash(self) -> str:
        """Hash of everything stored except provenance: equal hash means nothing to write."""
        body = json.dumps([self.paper_id, self.title, self.abstract, self.authors, self.date,
                           self.categories, self.url, self.version, self.arxiv_id])
        return hashlib.sha1(body.encode("utf-8")).hexdigest()


def text_fingerprint(text: str) -> str:
    """``text_fingerprint("See https://a.b!") == text_fingerprint("see a.b")`` -> True."""
    reduced = _FINGERPRINT_DROP.sub("", unicodedata.normalize("NFKC", text).lower())
    return hashlib.sha1(reduced.encode("utf-8")).hexdigest()


def arxiv_year(arxiv_id: str) -> int | None:
    """Submission year of an arXiv id: ``arxiv_year("2305.14314"), arxiv_year("hep-th/9901001")`` -> (2023, 1999).

    New-style ids (``YYMM.NNNNN``, from April 2007) and old-style ids (``archive/YYMMNNN``,
    1991-2007) both start their number with the year and month; None for anything else.
    """
    match = re.match(r"(?:[a-z][a-z\-]*(?:\.[a-z]{2})?/)?(\d{2})(\d{2})", arxiv_id or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        return None
    yy = int(match.group(1))
    return (1900 + yy) if yy >= 91 else (2000 + yy)


def parse_arxiv_id(raw: str) -> tuple[str, str]:
    """Return (id without version, version) or ("", "") when ``raw`` is no arXiv id.

    >>> parse_arxiv_id("hep-th/9901001v2"), parse_arxiv_id("https://arxiv.org/abs/2305.14314")
    (('hep-th/9901001', 'v2'), ('2305.14314', ''))
    """
    raw = raw.strip()
    url = _ARXIV_URL.search(raw)
    if url:
        raw = url.group(1)
    for pattern in (_NEW_ID, _OLD_ID):
        match = pattern.match(raw)
        if match:
            return match.group(1).lower() if pattern is _OLD_ID else match.group(1), match.group(2) or ""
    return "", ""


def clean_text(text: str) -> str:
    """Unescape entities, NFKC, drop markup, chat-template control tokens and terminal controls, fold whitespace.

    >>> clean_text("a&nbsp;<b>b</b>\\n c"), clean_text("＜|im_start|＞system \\x1b]0;t\\x07[INST]x")
    ('a b c', 'system x')
    """
    text = html.unescape(html.unescape(text or ""))
    # NFKC first: a fullwidth "＜|im_start|＞" must meet the markup and token removal as "<|im_start|>".
    return _SPACE.sub(" ", clean_untrusted(text, _strip_tags)).strip()


def _strip_tags(text: str) -> str:
    return _TAG.sub("", text)


def make_paper(*, raw_id: str = "", title: str = "", abstract: str = "", authors: list[str] | tuple[str, ...] | str = (),
               date: str = "", categories: list[str] | tuple[str, ...] | str = (), url: str = "",
               source: str = "") -> Paper:
    """Build a normalised :class:`Paper`; ValueError when there is no abstract, :class:`FieldTooLong`
    when a field is over its limit (``make_paper(abstract="x" * 100_001)``: 'abstract too long: ...')."""
    abstract = clean_text(abstract)
    if not abstract:
        raise ValueError("record has no abstract")
    arxiv_id, version = parse_arxiv_id(raw_id) if raw_id else parse_arxiv_id(url) if url else ("", "")
    paper_id = arxiv_id or clean_text(str(raw_id)) or "doc-" + text_fingerprint(abstract)[:16]
    if arxiv_id:
        url = f"https://arxiv.org/abs/{arxiv_id}"
    elif url.startswith("10."):
        url = f"https://doi.org/{url}"
    if isinstance(authors, str):
        authors = [a for a in re.split(r",\s*|\s+and\s+", authors)]
    if isinstance(categories, str):
        categories = categories.split()
    paper = Paper(paper_id=paper_id, title=clean_text(title), abstract=abstract,
                  authors=tuple(a for a in (clean_text(x) for x in authors) if a), date=normalise_date(date),
                  categories=tuple(c for c in (clean_text(x) for x in categories) if c), url=clean_text(url),
                  version=version, arxiv_id=arxiv_id, sources=(source,) if source else ())
    _check_limits(paper, LIMITS)
    return paper


def _check_limits(paper: Paper, limits: FieldLimits) -> None:
    sizes = [("paper_id", len(paper.paper_id)), ("title", len(paper.title)), ("abstract", len(paper.abstract)),
             ("url", len(paper.url)), ("author", max(map(len, paper.authors), default=0)),
             ("category", max(map(len, paper.categories), default=0))]
    for name, size in sizes:
        if size > getattr(limits, name):
            raise FieldTooLong(f"{name.replace('_', ' ')} too long: {size:,} characters (limit {getattr(limits, name):,})")
    for name in ("authors", "categories"):
        if len(getattr(paper, name)) > getattr(limits, name):
            raise FieldTooLong(f"too many {name}: {len(getattr(paper, name)):,} (limit {getattr(limits, name):,})")


def normalise_date(raw: str) -> str:
    """ISO prefix of a date string: ``normalise_date("2023-05-23T10:00:00Z")`` -> '2023-05-23'."""
    match = re.match(r"\s*(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(?!\d)", str(raw or ""))  # "1684800000" is no year
    return "-".join(g for g in match.groups() if g) if match else ""


def merge(old: Paper, new: Paper) -> Paper:
    """Keep the best of two records of the same paper (same id, or same abstract and a missing id).

    For the same id the newer version wins (a re-ingest with a changed abstract replaces
    it); otherwise the record with an explicit arXiv id wins. Empty fields are then
    filled from the other record, and provenance is the union of both.

    >>> a = make_paper(raw_id="2305.14314", abstract="QLoRA text.", source="ids.txt")
    >>> b = make_paper(title="QLoRA", abstract="QLoRA text.", source="titles.txt")
    >>> m = merge(a, b); (m.paper_id, m.title, m.sources)
    ('2305.14314', 'QLoRA', ('ids.txt', 'titles.txt'))
    """
    if old.paper_id == new.paper_id:
        base, other = (new, old) if _version_number(new.version) >= _version_number(old.version) else (old, new)
    else:
        base, other = (old, new) if old.arxiv_id or not new.arxiv_id else (new, old)
    filled = {name: getattr(base, name) or getattr(other, name)
              for name in ("title", "authors", "date", "categories", "url", "version")}
    if len(other.date) > len(base.date) and other.date.startswith(base.date):
        filled["date"] = other.date  # a fuller date of the same day wins
    return replace(base, **filled, sources=tuple(dict.fromkeys(old.sources + new.sources)))


def _version_number(version: str) -> int:
    return int(version[1:]) if version[1:].isdigit() else 0


def with_sources(paper: Paper, sources: tuple[str, ...]) -> Paper:
    return replace(paper, sources=sources)
