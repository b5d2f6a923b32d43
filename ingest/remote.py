"""Remote sources: ``arxiv:<search query>``, ``arxiv:<id>[,<id>...]`` and ``hf:<dataset>[:<split>]``.

The arXiv API (an Atom feed) is read with urllib and xml.etree, paged with
``start``/``max_results`` and at most one request per ``options.arxiv_delay_s``
(3 s by default, as the API's terms ask) for every spec of the process. A search
is plain words (each must match anywhere) or arXiv's own syntax (``ti:``, ``au:``,
``abs:``, ``cat:``, ``all:`` with AND/OR/ANDNOT), passed through unchanged.
An unreachable service raises ``UnavailableError`` at once; a query the API
refuses, or an id it does not know, is a Rejection.

>>> arxiv_query("retrieval augmented generation")
'all:retrieval AND all:augmented AND all:generation'
>>> arxiv_query("ti:QLoRA AND cat:cs.LG"), arxiv_ids("arXiv:2305.14314, https://arxiv.org/abs/hep-th/9901001v2")
('ti:QLoRA AND cat:cs.LG', ['2305.14314', 'hep-th/9901001v2'])
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

from ingest.http_fetch import fetch, limiter_for
from ingest.records import Paper, make_paper, parse_arxiv_id
from ingest.source_types import ReadOptions, Rejection
from models.errors import UnavailableError

DEFAULT_SEARCH_RESULTS = 100
_NS = {"a": "http://www.w3.org/2005/Atom", "arxiv": "http://arxiv.org/schemas/atom",
       "os": "http://a9.com/-/spec/opensearch/1.1/"}
_FIELD_SYNTAX = re.compile(r"\b(ti|au|abs|co|jr|cat|rn|id|all):", re.I)


def is_remote(spec: str) -> bool:
    return spec.startswith(("arxiv:", "hf:"))


def read_remote(spec: str, options: ReadOptions) -> Iterator[Paper | Rejection]:
    """Papers of a remote spec; raises UnavailableError when the service cannot be reached."""
    if spec.startswith("hf:"):
        from ingest.remote_hf import read_hf  # datasets is heavy: import it only for hf: specs

        yield from read_hf(spec, options)
        return
    query = spec.removeprefix("arxiv:").strip()
    if not query:
        yield Rejection(spec, None, "empty arXiv query: use arxiv:<words> or arxiv:<id>[,<id>...]")
        return
    ids = arxiv_ids(query)
    yield from _read_ids(spec, ids, options) if ids else _read_search(spec, query, options)


def arxiv_ids(text: str) -> list[str]:
    """The comma-separated arXiv ids (or abstract URLs) of ``text``, normalised with their
    versions, or [] when any part is not an id."""
    parsed = [parse_arxiv_id(p) for p in text.split(",") if p.strip()]
    return [arxiv_id + version for arxiv_id, version in parsed] if parsed and all(i for i, _ in parsed) else []


def arxiv_query(text: str) -> str:
    """arXiv ``search_query`` for user text: its own syntax unchanged, else all words ANDed."""
    if _FIELD_SYNTAX.search(text):
        return text
    return " AND ".join(f"all:{word}" for word in re.findall(r"[^\s\"']+", text))


def lookup_ids(ids: list[str], options: ReadOptions) -> list[Paper]:
    """The arXiv records of ``ids`` (unknown ids are left out); raises UnavailableError when offline."""
    return [r for r in _read_ids("arxiv:lookup", ids, options) if isinstance(r, Paper)]


def search_papers(query: str, max_results: int, options: ReadOptions) -> list[Paper]:
    """One page of results of an arXiv ``search_query`` (its own syntax); [] when the API refuses it."""
    _, records = _fetch_page("arxiv:search", {"search_query": query, "start": 0, "max_results": max_results}, options)
    return [r for r, _ in records if isinstance(r, Paper)]


def arxiv_reachable(options: ReadOptions, timeout_s: float = 3.0) -> str:
    """'' when the arXiv API's host accepts a connection, else why not (one try, no retries: offline says so at once)."""
    url = urlsplit(options.arxiv_base_url)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout_s):
            return ""
    except OSError as exc:  # DNS failure, refused, no route, timeout
        return f"the arXiv API at {options.arxiv_base_url} cannot be reached ({exc.strerror or exc})"


def _read_ids(spec: str, ids: list[str], options: ReadOptions) -> Iterator[Paper | Rejection]:
    for start in range(0, len(ids), options.page_size):
        batch = ids[start:start + options.page_size]
        found: set[str] = set()
        for record, updated in _fetch_page(spec, {"id_list": ",".join(batch), "max_results": len(batch)},
                                           options)[1]:
            if isinstance(record, Paper):
                found.add(record.arxiv_id)
            if isinstance(record, Rejection) or options.keeps(record, updated):
                yield record
        for raw in batch:
            if parse_arxiv_id(raw)[0] not in found:
                yield Rejection(spec, None, f"arXiv has no paper {raw}")


def _read_search(spec: str, query: str, options: ReadOptions) -> Iterator[Paper | Rejection]:
    query = arxiv_query(query)
    if options.category and "." in options.category and "cat:" not in query:
        query = f"({query}) AND cat:{options.category}"  # let the API filter; checked again below
    wanted = options.max_results or DEFAULT_SEARCH_RESULTS
    start = 0
    while start < wanted:
        size = min(options.page_size, wanted - start)
        total, records = _fetch_page(spec, {"search_query": query, "start": start, "max_results": size}, options)
        for record, updated in records[:size]:  # never more than asked for
            if isinstance(record, Rejection) or options.keeps(record, updated):
                yield record
        start += size
        wanted = min(wanted, total)
        if not records:
            return


def _fetch_page(spec: str, params: dict, options: ReadOptions) -> tuple[int, list[tuple[Paper | Rejection, str]]]:
    """One API request: (total results the API reports, [(record, its updated date)] of this page)."""
    url = f"{options.arxiv_base_url}?{urlencode(params)}"
    status, body = fetch(url, "arXiv API", options.timeout_s, limiter_for(options.arxiv_base_url,
                                                                           options.arxiv_delay_s))
    try:
        feed = ET.fromstring(body)
    except ET.ParseError:
        feed = None
    if feed is None or feed.tag != f"{{{_NS['a']}}}feed":
        # A captive portal or proxy page: the API itself was not reached.
        raise UnavailableError(f"arXiv API at {options.arxiv_base_url} answered with something that is not "
                               f"an Atom feed (HTTP {status}, starting {body[:60]!r})")
    errors = [e for e in feed.findall("a:entry", _NS) if "/api/errors" in (e.findtext("a:id", "", _NS))]
    if status >= 400 or errors:
        detail = errors[0].findtext("a:summary", "", _NS).strip() if errors else f"HTTP {status}"
        return 0, [(Rejection(spec, None, f"arXiv API refused the query: {detail}"), "")]
    total = int(feed.findtext("os:totalResults", "0", _NS) or 0)
    entries = feed.findall("a:entry", _NS)
    return total, [(_entry_paper(entry, spec, params.get("start", 0) + n), entry.findtext("a:updated", "", _NS))
                   for n, entry in enumerate(entries, 1)]


def _entry_paper(entry: ET.Element, spec: str, position: int) -> Paper | Rejection:
    text = lambda path: (entry.findtext(path, "", _NS) or "").strip()  # noqa: E731
    categories = [c.get("term", "") for c in entry.findall("a:category", _NS)]
    primary = entry.find("arxiv:primary_category", _NS)
    if primary is not None and primary.get("term") in categories:
        categories.insert(0, categories.pop(categories.index(primary.get("term", ""))))
    try:
        return make_paper(raw_id=text("a:id"), title=text("a:title"), abstract=text("a:summary"),
                          authors=[a.findtext("a:name", "", _NS) for a in entry.findall("a:author", _NS)],
                          date=text("a:published"), categories=categories, url=text("arxiv:doi"), source=spec)
    except ValueError:
        return Rejection(spec, position, f"arXiv entry {text('a:id') or position} has no abstract")
