"""HTML for the sources panel and the search results: one card per paper, its cited sentences marked.

A card carries the id :func:`chat.render.anchor` gives its paper, so an answer's ``[n]`` of a
paper without a page scrolls to it. Every sentence of the abstract that the answer cites
is highlighted and numbered with its citation; a paper named from its abstract shows the
name as derived. Escaping as in :mod:`chat.render`.

>>> from ingest.records import make_paper
>>> p = make_paper(abstract="We present Orca, a 13B model. Orca imitates GPT-4. It is open.")
>>> card = render_source(1, p, ["Orca imitates GPT-4."])
>>> '<mark>Orca imitates GPT-4.</mark><sup class="pc-markno">&#91;1&#93;</sup>' in card, 'pc-derived' in card
(True, True)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from chat.render import DERIVED_TIP, anchor, filters_label, link, safe_url, text
from ingest.labels import paper_label

_MAX_AUTHORS = 6
_MARKERS = re.compile(r"\s*\[\s*\d+(?:\s*[-\u2013,;]\s*\d+)*\s*\]|\s*\[unsupported\]")


def highlight(abstract: str, sentences: Iterable[str], number: int | None = None) -> str:
    """Escape ``abstract`` with each of ``sentences`` found in it wrapped in <mark> (whitespace/case tolerant),
    each followed by its citation ``number``.

    >>> highlight("A first. The key idea. The end.", ["the key idea."])
    'A first. <mark>The key idea.</mark> The end.'
    """
    spans: list[tuple[int, int]] = []
    for sentence in sentences:
        words = _MARKERS.sub("", sentence or "").split()
        if not words:
            continue
        found = re.search(r"\s+".join(map(re.escape, words)), abstract, re.IGNORECASE)
        if found:
            spans.append(found.span())
    tag = f'<sup class="pc-markno">{text(f"[{number}]")}</sup>' if number is not None else ""
    out, last = [], 0
    for start, end in sorted(set(spans)):
        if start < last:  # overlapping sentences: extend the current mark instead of nesting
            if end > last:
                out[-1] = out[-1][:-len("</mark>" + tag)] + text(abstract[last:end]) + "</mark>" + tag
                last = end
            continue
        out.append(text(abstract[last:start]) + f"<mark>{text(abstract[start:end])}</mark>{tag}")
        last = end
    out.append(text(abstract[last:]))
    return "".join(out)


def paper_name(paper: Any, fallback: str = "") -> str:
    """The paper's name as HTML: its title, or its derived label marked as derived."""
    if getattr(paper, "title", ""):
        return text(paper.title)
    name = paper_label(paper) if getattr(paper, "abstract", "") else fallback or paper.paper_id
    return f'<span class="pc-derived" title="{DERIVED_TIP}">{text(name)}</span>'


def _meta(paper: Any, extra: str = "") -> str:
    authors = list(getattr(paper, "authors", ()) or ())
    shown = ", ".join(authors[:_MAX_AUTHORS]) + (" et al." if len(authors) > _MAX_AUTHORS else "")
    year = getattr(paper, "date", "") or (str(paper.year) if getattr(paper, "year", None) else "")
    parts = [text(x) for x in (shown, year, getattr(paper, "paper_id", "")) if x]
    return f'<div class="pc-meta">{" · ".join(parts)}{extra}</div>'


def render_source(n: int | None, paper: Any, sentences: Sequence[str] = (), supported: bool = True,
                  score: float | None = None, best: str = "") -> str:
    """One paper's card: [n], its name (linked to its page), authors, year, id, the abstract with the cited
    sentences marked. ``best``: a search result's best-matching passage, shown above the abstract."""
    label = text(f"[{n}] ") if n is not None else ""
    name = paper_name(paper)
    title = link(paper.url, name, paper.title or paper_label(paper)) if safe_url(paper.url) else name
    extra = f" · score {score:.3f}" if score is not None else ""
    warn = "" if supported else '<div class="pc-warn">\u26a0 a sentence citing this paper is not supported by it</div>'
    best_html = f'<div class="pc-best"><b>Best match:</b> \u201c{text(best)}\u201d</div>' if best else ""
    marked = highlight(paper.abstract, [best], None) if best else highlight(paper.abstract, sentences, n)
    return (f'<div class="pc-source" id="{anchor(paper.paper_id)}" data-paper-id="{text(paper.paper_id)}">'
            f'<div class="pc-title">{label}<strong>{title}</strong></div>{_meta(paper, extra)}{warn}{best_html}'
            f'<div class="pc-abstract">{marked}</div></div>')


def cited_sentences(answer: Any, n: int) -> list[str]:
    """Every sentence the answer cites paper ``n`` for: the checker's supporting sentences, and the answer's
    own sentences citing ``n`` (an extractive answer quotes the abstract, so they are found in it)."""
    found = [c.supporting_sentence for c in answer.citations if int(c.n) == n and c.supporting_sentence]
    for check in getattr(answer, "checks", ()):
        if n in tuple(getattr(check, "cited", ())):
            found.append(check.text)
    return list(dict.fromkeys(found))


def render_sources(answer: Any, filters: Any = None) -> str:
    """The sources panel: each cited paper once (by marker number), or the nearest papers when abstaining."""
    papers = {s.paper_id: s for s in answer.sources}
    by_n: dict[int, list] = {}
    for c in answer.citations:
        by_n.setdefault(int(c.n), []).append(c)
    parts = []
    for n, cites in sorted(by_n.items()):
        source = papers.get(cites[0].paper_id)
        paper = source.paper if source else _CitedPaper(cites[0])
        parts.append(render_source(n, paper, cited_sentences(answer, n), all(c.supported for c in cites),
                                   source.score if source else None))
    scope = filters_label(filters)
    scope_html = f'<p class="pc-meta">Searched only: {text(scope)}</p>' if scope else ""
    if parts:
        return f'<div class="pc-sources"><h4>Cited papers</h4>{scope_html}{"".join(parts)}</div>'
    nearest = [render_source(None, s.paper, (), True, s.score) for s in answer.sources]
    heading = "Nearest papers" if answer.abstained else "Retrieved papers (the answer cites none of them)"
    empty = f"<p>No indexed paper matches: {text(scope)}.</p>" if scope else "<p>No papers retrieved.</p>"
    return f'<div class="pc-sources"><h4>{heading}</h4>{scope_html}{"".join(nearest) or empty}</div>'


class _CitedPaper:
    """Paper-like view of a citation whose paper is not among the sources (an answer reopened after its paper
    was removed from the index)."""

    def __init__(self, citation: Any):
        self.paper_id, self.title, self.url = citation.paper_id, citation.title, citation.url
        self.abstract, self.authors, self.date, self.year = citation.supporting_sentence, (), "", None


def render_hits(hits: Sequence[Any], best: Sequence[str] = ()) -> str:
    """Search results (retrieval only): ranked papers with scores and their best-matching passage marked."""
    if not hits:
        return '<div class="pc-sources"><p>No matching papers.</p></div>'
    best = list(best) + [""] * (len(hits) - len(best))
    parts = [render_source(h.rank, h.paper, (), True, h.score, b) for h, b in zip(hits, best)]
    return '<div class="pc-sources">' + "".join(parts) + "</div>"
