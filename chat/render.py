"""HTML for the web app: answers with linked citations, the sources panel, the trace.

Pure functions over the answer dataclasses; no gradio here. Every piece of text
that came from outside (titles, abstracts, authors, answers, questions) goes
through :func:`text`, which escapes HTML *and* the characters Markdown or LaTeX
would act on, so the same HTML is inert in ``gr.HTML`` and in ``gr.Chatbot``.
Output never contains a newline: a blank line would end Markdown's HTML block.

>>> text('<script>alert(1)</script> *x*')
'&#60;script&#62;alert(1)&#60;/script&#62; &#42;x&#42;'
>>> link_markers("Uses 4 bits [1, 2].", {1: ("https://arxiv.org/abs/2305.14314", "QLoRA")})
'Uses 4 bits <a class="pc-cite" href="https://arxiv.org/abs/2305.14314" target="_blank" rel="noopener noreferrer" title="QLoRA">&#91;1&#93;</a>&#91;2&#93;.'
>>> highlight("A first. The key idea. The end.", ["the key idea."])
'A first. <mark>The key idea.</mark> The end.'
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

# HTML's special characters, and those Markdown (marked), GFM tables/strikethrough and KaTeX give
# meaning to: each becomes a numeric character reference in one pass (a second pass would
# re-escape the '#' of the first pass's references).
_ESCAPES = {c: f"&#{ord(c)};" for c in "&<>\"'\\`*_[]{}#|~$"}
_MARKER = re.compile(r"\[(\d+(?:\s*[-\u2013,;]\s*\d+)*)\]")
_MAX_AUTHORS = 6
CURSOR = '<span class="pc-cursor">\u258c</span>'

CSS = """
.pc-badge {display:inline-block;padding:1px 8px;margin:0 6px 4px 0;border-radius:10px;font-size:0.8em;
  font-weight:600;background:#e0e7ff;color:#1e3a8a}
.pc-badge.pc-extractive {background:#fef3c7;color:#92400e}
.pc-badge.pc-abstained {background:#fee2e2;color:#991b1b}
.pc-cite {text-decoration:none;font-weight:600}
.pc-sources {max-height:80vh;overflow-y:auto}
.pc-source {border-left:3px solid #6366f1;padding:4px 10px;margin:0 0 12px 0}
.pc-source mark {background:#fde68a;color:inherit}
.pc-meta {font-size:0.85em;opacity:0.8}
.pc-warn {color:#b45309;font-size:0.85em}
.pc-error {color:#b91c1c;font-weight:600}
.pc-trace {font-size:0.8em;margin-top:6px}
.pc-answer .pc-trace table, .pc-answer .pc-trace ul, .pc-answer .pc-trace li {font-size:0.85em !important;margin:0}
.pc-trace td, .pc-trace th {padding:1px 6px}
.pc-sources h4 {margin:0 0 8px 0}
"""


def text(value: Any) -> str:
    """Escape untrusted text for HTML and neutralise Markdown/LaTeX syntax; newlines become <br>."""
    escaped = "".join(_ESCAPES.get(c, c) for c in str(value or ""))
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def safe_url(url: str) -> str:
    """The URL escaped for an attribute when it is http(s), else '' (no javascript:, data: ...)."""
    url = (url or "").strip()
    if urlparse(url).scheme.lower() not in ("http", "https") or any(c.isspace() for c in url):
        return ""
    return html.escape(url, quote=True)


def link(url: str, label_html: str, title: str = "", cls: str = "") -> str:
    """An external link around already-escaped ``label_html``; plain label when the URL is unsafe."""
    href = safe_url(url)
    if not href:
        return label_html
    attrs = f' class="{cls}"' if cls else ""
    attrs += f' href="{href}" target="_blank" rel="noopener noreferrer"'
    attrs += f' title="{text(title)}"' if title else ""
    return f"<a{attrs}>{label_html}</a>"


def marker_numbers(inner: str) -> list[int]:
    """Numbers in a marker body: ``marker_numbers("1, 3-4")`` -> [1, 3, 4]."""
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", inner.strip()):
        bounds = [int(x) for x in re.split(r"\s*[-\u2013]\s*", part) if x]
        if len(bounds) == 2 and 0 < bounds[1] - bounds[0] < 50:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers


def link_markers(answer: str, targets: Mapping[int, tuple[str, str]]) -> str:
    """Escape ``answer`` and turn each marker number with a (url, title) target into a link.

    ``[1, 3]`` and ``[1-3]`` are split into one bracketed link per number.
    """
    out, last = [], 0
    for match in _MARKER.finditer(answer):
        out.append(text(answer[last:match.start()]))
        for n in marker_numbers(match.group(1)):
            label = text(f"[{n}]")
            url, title = targets.get(n, ("", ""))
            out.append(link(url, label, title, "pc-cite") if url else label)
        last = match.end()
    out.append(text(answer[last:]))
    return "".join(out)


def highlight(abstract: str, sentences: Iterable[str]) -> str:
    """Escape ``abstract`` with each supporting sentence wrapped in <mark> (whitespace/case tolerant)."""
    spans: list[tuple[int, int]] = []
    for sentence in sentences:
        words = (sentence or "").split()
        if not words:
            continue
        found = re.search(r"\s+".join(map(re.escape, words)), abstract, re.IGNORECASE)
        if found:
            spans.append(found.span())
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:  # overlapping sentences: extend the current mark instead of nesting
            if end > last:
                out[-1] = out[-1][:-len("</mark>")] + text(abstract[last:end]) + "</mark>"
                last = end
            continue
        out.append(text(abstract[last:start]) + f"<mark>{text(abstract[start:end])}</mark>")
        last = end
    out.append(text(abstract[last:]))
    return "".join(out)


def badge(answer: Any) -> str:
    """Which model answered, or 'extractive'; plus 'not covered' when the answer abstained."""
    if getattr(answer, "mode", "") == "llm":
        out = f'<span class="pc-badge pc-llm" title="generated by a local model">model: {text(answer.model)}</span>'
    else:
        out = '<span class="pc-badge pc-extractive" title="sentences quoted from the abstracts">extractive</span>'
    if getattr(answer, "abstained", False):
        out += '<span class="pc-badge pc-abstained">not covered by the indexed papers</span>'
    return out


def citation_targets(answer: Any) -> dict[int, tuple[str, str]]:
    """Marker number -> (url, title) from the answer's checked citations."""
    targets: dict[int, tuple[str, str]] = {}
    for c in answer.citations:
        targets.setdefault(int(c.n), (c.url, c.title))
    return targets


def render_answer(answer: Any, notes: Sequence[str] = ()) -> str:
    """The chat message for a finished answer: badge, linked answer text, notes, collapsible trace."""
    body = link_markers(answer.answer, citation_targets(answer))
    notes = render_notice([*getattr(answer, "notes", ()), *notes])
    return (f'<div class="pc-answer">{badge(answer)}<div class="pc-text">{body}</div>{notes}'
            f'{render_trace(answer)}</div>')


def render_partial(partial: str) -> str:
    """The chat message while an answer streams in: escaped text and a cursor."""
    return f'<div class="pc-answer pc-streaming"><div class="pc-text">{text(partial)}{CURSOR}</div></div>'


def render_user(question: str) -> str:
    return f'<div class="pc-question">{text(question)}</div>'


def _paper_meta(paper: Any, extra: str = "") -> str:
    authors = list(getattr(paper, "authors", ()) or ())
    shown = ", ".join(authors[:_MAX_AUTHORS]) + (" et al." if len(authors) > _MAX_AUTHORS else "")
    parts = [text(x) for x in (shown, getattr(paper, "date", ""), getattr(paper, "paper_id", "")) if x]
    return f'<div class="pc-meta">{" · ".join(parts)}{extra}</div>'


def render_source(n: int | None, paper: Any, sentences: Sequence[str] = (), supported: bool = True,
                  score: float | None = None, title: str = "") -> str:
    """One paper in the sources panel, its supporting sentences highlighted in the abstract."""
    label = text(f"[{n}] ") if n is not None else ""
    title = link(paper.url, text(title or paper.title or paper.paper_id), paper.url)
    extra = f" · score {score:.3f}" if score is not None else ""
    warn = "" if supported else '<div class="pc-warn">\u26a0 the cited sentence is not supported by this abstract</div>'
    return (f'<div class="pc-source" data-paper-id="{text(paper.paper_id)}"><div class="pc-title">{label}'
            f'<strong>{title}</strong></div>{_paper_meta(paper, extra)}{warn}'
            f'<div class="pc-abstract">{highlight(paper.abstract, sentences)}</div></div>')


def render_sources(answer: Any) -> str:
    """The sources panel: each cited paper once (by marker number), or the nearest papers when abstaining."""
    papers = {s.paper_id: s for s in answer.sources}
    by_n: dict[int, list] = {}
    for c in answer.citations:
        by_n.setdefault(int(c.n), []).append(c)
    parts = []
    for n, cites in sorted(by_n.items()):
        first = cites[0]
        source = papers.get(first.paper_id)
        paper = source.paper if source else _CitedPaper(first)
        parts.append(render_source(n, paper, [c.supporting_sentence for c in cites], all(c.supported for c in cites),
                                   source.score if source else None, first.title))
    if parts:
        return '<div class="pc-sources"><h4>Cited papers</h4>' + "".join(parts) + "</div>"
    nearest = [render_source(None, s.paper, (), True, s.score, s.title) for s in answer.sources]
    heading = "Nearest papers" if answer.abstained else "Retrieved papers (the answer cites none of them)"
    return f'<div class="pc-sources"><h4>{heading}</h4>{"".join(nearest) or "<p>No papers retrieved.</p>"}</div>'


class _CitedPaper:
    """Paper-like view of a citation whose paper is not among the sources (should not happen)."""

    def __init__(self, citation: Any):
        self.paper_id, self.title, self.url = citation.paper_id, citation.title, citation.url
        self.abstract, self.authors, self.date = citation.supporting_sentence, (), ""


def render_trace(answer: Any) -> str:
    """A collapsed <details> with retrieved ids and scores, prompt tokens and timings."""
    rows = "".join(
        f"<tr><td>{h.rank}</td><td>{text(h.paper.paper_id)}</td><td>{h.score:.4f}</td>"
        f"<td>{h.dense:.3f}</td><td>{h.keyword:.3f}</td></tr>" for h in answer.retrieved)
    timings = ", ".join(f"{text(k)} {v:.2f}s" for k, v in answer.timings.items())
    total = answer.timings.get("total", sum(answer.timings.values()))
    summary = f"Trace: {len(answer.retrieved)} retrieved · {answer.prompt_tokens} prompt tokens · {total:.2f}s"
    facts = [("query", text(answer.standalone_query)), ("prompt tokens", str(answer.prompt_tokens)),
             ("timings", timings or "-"), ("invalid markers removed", str(answer.removed_markers)),
             ("unsupported citations", str(answer.unsupported))]
    facts_html = "".join(f"<li><b>{k}</b>: {v}</li>" for k, v in facts)
    table = ("<table><tr><th>rank</th><th>paper</th><th>score</th><th>dense</th><th>keyword</th></tr>"
             f"{rows}</table>") if rows else "<p>nothing retrieved</p>"
    return f'<details class="pc-trace"><summary>{summary}</summary>{table}<ul>{facts_html}</ul></details>'


def render_hits(hits: Sequence[Any]) -> str:
    """Search results (retrieval only): ranked papers with scores and their best passage highlighted."""
    if not hits:
        return '<div class="pc-sources"><p>No matching papers.</p></div>'
    parts = [render_source(h.rank, h.paper, h.passages[:1], True, h.score) for h in hits]
    return '<div class="pc-sources">' + "".join(parts) + "</div>"


def render_error(message: str) -> str:
    """A failure message (offline arXiv, bad filter) as an escaped warning."""
    return f'<div class="pc-error">\u26a0 {text(message)}</div>'


def render_ingest(report: Any, max_rejections: int = 10) -> str:
    """The result of adding papers: sources that failed as a whole (offline arXiv, unreadable file) as
    errors, then the report's summary line and the first rejections."""
    rejected = list(report.rejected)
    errors = "".join(render_error(f"Could not add papers from {r.source}: {r.reason}")
                     for r in rejected if r.line is None)
    items = "".join(f"<li>{text(str(r))}</li>" for r in rejected[:max_rejections])
    more = f"<li>… and {len(rejected) - max_rejections} more</li>" if len(rejected) > max_rejections else ""
    details = f"<details><summary>{len(rejected)} rejected</summary><ul>{items}{more}</ul></details>" if items else ""
    note = render_notice([report.stale_note])
    return (f'{errors}<div class="pc-ingest"><p>{text(report.summary())} ({report.seconds:.1f}s)</p>'
            f'{details}</div>{note}')


def render_notice(lines: Sequence[str]) -> str:
    """Escaped notices (first-start ingest, model fallback) for the banner."""
    return "".join(f'<div class="pc-warn">{text(line)}</div>' for line in lines if line)


def example_questions(papers: Iterable[Any], n: int = 4) -> list[str]:
    """Questions built from the titles of ``n`` indexed papers (papers without a title are skipped).

    >>> from types import SimpleNamespace as P
    >>> example_questions([P(title="QLoRA: Efficient Finetuning of Quantized LLMs"), P(title="")], 3)
    ['What does "QLoRA: Efficient Finetuning of Quantized LLMs" propose?']
    """
    templates = ('What does "{}" propose?', 'What are the main results of "{}"?', 'How does "{}" work?')
    out: list[str] = []
    for paper in papers:
        title = " ".join((getattr(paper, "title", "") or "").split())
        if 8 <= len(title) <= 160:
            out.append(templates[len(out) % len(templates)].format(title.rstrip(".")))
        if len(out) >= n:
            break
    return out
