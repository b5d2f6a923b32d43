"""The seed page formats of data/samples: copied web pages and dataset-viewer dumps.

``abstract-lines``: a header line, then one abstract per line (no ids, no titles).
``dump``: the Hugging Face dataset-viewer dump: column header (``arxiv_id``,
``stringlengths``, 9, 12, ``abstract``, ...), then id / abstract line pairs.
``pages``: Hugging Face papers and Daily Papers pages: title / abstract pairs, each
optionally followed by "• N authors", "·" and a date with upvotes ("Jul 1, 2024 1").
Page chrome ("Subscribe", "Get trending papers…", "Daily Papers", the page date)
is dropped; author counts and upvotes are dropped; a date with a year becomes the
paper's ISO date, one without a year ("Jul 3") leaves the date empty: guessing the
year would be wrong for papers listed on a later page. A line of 30 words or more
is an abstract, a shorter one a title (a short line right after a title is its
abstract unless it reads as another title); a scraped "Abstract" label at the
start of an abstract is dropped.

>>> lines = ["new", "", "Subscribe", "", "Daily Papers", "", "Dec 8", "", "A Title", "",
...          "An abstract long enough to be one. " * 3, "", "  • 2 authors", "·", "Jul 1, 2024 1"]
>>> [(p.title, p.date) for p in parse_pages(enumerate(lines, 1), "page.txt")]
[('A Title', '2024-07-01')]
>>> [p.paper_id for p in parse_dump(enumerate(["arxiv_id", "stringlengths", "2210.13966v3", "Text."], 1), "d.txt")]
['2210.13966']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from ingest.records import FieldTooLong, Paper, make_paper, parse_arxiv_id
from ingest.repair import repair_scraped  # pages lose spaces at links and markup: put them back
from ingest.source_types import Rejection

Line = tuple[int, str] | Rejection

_CHROME = re.compile(
    r"(new|subscribe|daily papers|byak and the research community|upvote|"
    r"daily curated ai research papers with translations|get trending papers.*)", re.I)
_AUTHORS = re.compile(r"[•·*\-]?\s*\d+\s+authors?", re.I)
_DOT = re.compile(r"[·•]")
_MONTH = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)(?:uary|ruary|ch|il|e|y|ust|t|tember|ober|ember)?\.?"
_DATE = re.compile(_MONTH + r" (\d{1,2})(?:, (\d{4}))?(?:\s+\d+)?")  # "Jul 1, 2024 1": date, then upvotes
_UPVOTES = re.compile(r"\d+")
_GLUED_SUBSCRIBE = re.compile(r"^Subscribe(?=[A-Z0-9])")
_ABSTRACT_LABEL = re.compile(r"^Abstract(?:\s*[:.—–-]\s*|\s+)(?=[A-Z])")
_DUMP_HEADER = re.compile(r"[a-z_]+|stringlengths|[\d.]+k?|string|int64|sequence|list", re.I)
_ABSTRACT_WORDS = 30


def is_chrome(text: str) -> bool:
    """Page navigation text that is never part of a paper: ``is_chrome("Daily Papers")`` -> True."""
    return bool(_CHROME.fullmatch(text.strip()))


def looks_like_abstract(text: str) -> bool:
    """A line long enough to be an abstract rather than a title."""
    return len(text.split()) >= _ABSTRACT_WORDS


def parse_abstract_lines(lines: Iterable[Line], source: str) -> Iterator[Paper | Rejection]:
    """Every non-chrome, non-blank line is one abstract."""
    for item in lines:
        if isinstance(item, Rejection):
            yield item
        elif item[1].strip() and not is_chrome(item[1]):
            try:
                yield make_paper(abstract=repair_scraped(item[1]), source=source)
            except FieldTooLong as exc:
                yield Rejection(source, item[0], str(exc))
            except ValueError:
                yield Rejection(source, item[0], "line has no text once markup is removed")


def parse_dump(lines: Iterable[Line], source: str) -> Iterator[Paper | Rejection]:
    """Id / abstract pairs after the column header; an abstract may span several lines."""
    current: tuple[int, str] | None = None
    body: list[str] = []
    for item in lines:
        if isinstance(item, Rejection):
            yield item
            continue
        number, text = item
        if parse_arxiv_id(text.strip())[0]:
            if current:
                yield _dump_record(current, body, source)
            current, body = (number, text.strip()), []
        elif current:
            body.append(text)
        elif text.strip() and not _DUMP_HEADER.fullmatch(text.strip()):
            yield Rejection(source, number, "text before the first arxiv_id line")
    if current:
        yield _dump_record(current, body, source)


def _dump_record(current: tuple[int, str], body: list[str], source: str) -> Paper | Rejection:
    try:
        return make_paper(raw_id=current[1], abstract=repair_scraped(" ".join(body)), source=source)
    except FieldTooLong as exc:
        return Rejection(source, current[0], f"record {current[1]}: {exc}")
    except ValueError:
        return Rejection(source, current[0], f"record {current[1]} has no abstract")


@dataclass
class _Draft:
    """A paper being read: its title and abstract, then the metadata lines below it."""

    title: str
    abstract: str
    line: int
    date: str = ""

    def record(self, source: str) -> Paper | Rejection:
        try:
            return make_paper(title=repair_scraped(self.title),
                              abstract=repair_scraped(_ABSTRACT_LABEL.sub("", self.abstract)),
                              date=self.date, source=source)
        except FieldTooLong as exc:
            return Rejection(source, self.line, str(exc))
        except ValueError:
            return Rejection(source, self.line, "abstract has no text once markup is removed")


def parse_pages(lines: Iterable[Line], source: str) -> Iterator[Paper | Rejection]:
    """Title / abstract pairs with page chrome and per-paper metadata lines."""
    title: tuple[int, str] | None = None
    draft: _Draft | None = None
    for item in lines:
        if isinstance(item, Rejection):
            yield item
            continue
        number, text = item[0], _GLUED_SUBSCRIBE.sub("", item[1].strip())
        if not text or is_chrome(text):
            continue
        if _read_meta(text, draft):
            continue
        if not looks_like_abstract(text) and (title is None or _looks_like_title(text)):
            if title is not None:
                yield Rejection(source, title[0], f"title without an abstract: {title[1][:80]!r}")
            title = (number, text)
            continue
        if draft:
            yield draft.record(source)
        draft, title = _Draft(title[1] if title else "", text, number), None
    if draft:
        yield draft.record(source)
    if title is not None:
        yield Rejection(source, title[0], f"title without an abstract: {title[1][:80]!r}")


def _looks_like_title(text: str) -> bool:
    # A short line after a pending title is itself a title unless it reads as prose.
    return len(text.split()) < 20 and not text.endswith(".")


def _read_meta(text: str, draft: _Draft | None) -> bool:
    """Consume an author-count, separator, date or upvote line; True when it was one."""
    if _AUTHORS.fullmatch(text) or _DOT.fullmatch(text) or _UPVOTES.fullmatch(text):
        return True
    date = _DATE.fullmatch(text)
    if not date:
        return False
    if draft is not None and date.group(3):
        draft.date = _iso_date(date.group(1), date.group(2), date.group(3))
    return True


def _iso_date(month: str, day: str, year: str) -> str:
    try:
        return datetime.strptime(f"{month} {day} {year}", "%b %d %Y").date().isoformat()
    except ValueError:
        return year


def sniff_page_format(lines: list[str]) -> str | None:
    """Which seed format a file's first lines are, or None when they are none of them.

    >>> sniff_page_format(["arxiv_id", "stringlengths", "9"]), sniff_page_format(["# README", "text"])
    ('dump', None)
    """
    content = [ln.strip() for ln in lines if ln.strip()]
    if not content:
        return None
    if content[0].lower() == "arxiv_id" or (len(content) > 1 and content[1].lower() == "stringlengths"):
        return "dump"
    if content[0].lower() == "daily curated ai research papers with translations":
        return "abstract-lines"
    chrome = any(is_chrome(ln) or _GLUED_SUBSCRIBE.match(ln) for ln in content)
    text = [ln for ln in content if not is_chrome(ln) and not _read_meta(ln, None)]
    if any(ln.startswith(("#", "|", "```", "<")) for ln in text):
        return None
    long_lines = sum(looks_like_abstract(ln) for ln in text)
    if text and long_lines == len(text) and (chrome or long_lines >= 2):
        return "abstract-lines"
    if chrome or (long_lines >= 2 and long_lines * 2 >= len(text) - 1):
        return "pages"
    return None
