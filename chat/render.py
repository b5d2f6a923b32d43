"""HTML for the web app's chat: answers with citations you can follow, drafts while the model writes.

Pure functions over the answer dataclasses; no gradio here. Every piece of text that came
from outside (titles, abstracts, authors, answers, questions) goes through :func:`text`,
which escapes HTML *and* the characters Markdown or LaTeX would act on, so the same HTML
is inert in ``gr.HTML`` and in ``gr.Chatbot``. Output never contains a newline: a blank
line would end Markdown's HTML block. A citation ``[n]`` links to the paper's page when
it has one, else to its card in the sources panel (``#pc-paper-…``); hovering shows the
title. A sentence the checker flagged carries a visible "unsupported" badge.

>>> text('<script>alert(1)</script> *x*')
'&#60;script&#62;alert(1)&#60;/script&#62; &#42;x&#42;'
>>> link_markers("Uses 4 bits [1, 2].", {1: ("https://arxiv.org/abs/2305.14314", "QLoRA")})
'Uses 4 bits <a class="pc-cite" href="https://arxiv.org/abs/2305.14314" target="_blank" rel="noopener noreferrer" title="QLoRA">&#91;1&#93;</a>&#91;2&#93;.'
>>> link_markers("Quoted [1].", {1: ("#pc-paper-doc-1", "Orca")})
'Quoted <a class="pc-cite pc-local" href="#pc-paper-doc-1" title="Orca (in the sources panel)">&#91;1&#93;</a>.'
>>> model_label("qwen2.5-0.5b-instruct-q4_k_m.gguf")
'Qwen2.5 0.5B Instruct (Q4_K_M)'
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from chat import citations as _citations

# HTML's special characters, and those Markdown (marked), GFM tables/strikethrough and KaTeX give
# meaning to: each becomes a numeric character reference in one pass (a second pass would
# re-escape the '#' of the first pass's references).
_ESCAPES = {c: f"&#{ord(c)};" for c in "&<>\"'\\`*_[]{}#|~$"}
_MARKER = re.compile(r"\[(\d+(?:\s*[-\u2013,;]\s*\d+)*)\]")
_LINKABLE = re.compile(r"https?://[^\s<>()\"']+[^\s<>()\"'.,;:]|\bdoc-[0-9a-f]{16}\b")
UNSUPPORTED_FLAG = getattr(_citations, "UNSUPPORTED_FLAG", "[unsupported]")
FLAG_HTML = ('<span class="pc-flag" title="No cited abstract supports this sentence: check it before you rely on '
             'it">unsupported</span>')
CURSOR = '<span class="pc-cursor">\u258c</span>'
DERIVED_TIP = "No title in the source: a name derived from the abstract"


def text(value: Any) -> str:
    """Escape untrusted text for HTML and neutralise Markdown/LaTeX syntax; newlines become <br>."""
    escaped = "".join(_ESCAPES.get(c, c) for c in str(value or ""))
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def attr(value: Any) -> str:
    """Escape untrusted text for an attribute value, newlines kept (as character references)."""
    return "".join(_ESCAPES.get(c, c) for c in str(value or "")).replace("\n", "&#10;")


def safe_url(url: str) -> str:
    """The URL escaped for an attribute when it is http(s), else '' (no javascript:, data: ...)."""
    url = (url or "").strip()
    if urlparse(url).scheme.lower() not in ("http", "https") or any(c.isspace() for c in url):
        return ""
    return html.escape(url, quote=True)


def anchor(paper_id: str) -> str:
    """The id of a paper's card in the sources panel: ``anchor("2305.14314")`` -> 'pc-paper-2305-14314'."""
    return "pc-paper-" + re.sub(r"[^A-Za-z0-9_-]", "-", paper_id or "")


def link(url: str, label_html: str, title: str = "", cls: str = "") -> str:
    """A link around already-escaped ``label_html``: external for http(s), in-page for ``#pc-paper-…``;
    the plain label when the URL is neither."""
    attrs = f' class="{cls}"' if cls else ""
    if url.startswith("#pc-paper-") and re.fullmatch(r"#pc-paper-[\w-]+", url):
        tip = text(title + " (in the sources panel)")
        return f'<a class="{cls} pc-local" href="{url}" title="{tip}">{label_html}</a>'
    href = safe_url(url)
    if not href:
        return label_html
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
    """Escape ``answer``; each marker number with a (url, title) target becomes a link, and the checker's
    unsupported flag becomes a badge. ``[1, 3]`` and ``[1-3]`` become one bracketed link per number."""
    return FLAG_HTML.join(_link_part(part, targets) for part in answer.split(UNSUPPORTED_FLAG))


def _link_part(answer: str, targets: Mapping[int, tuple[str, str]]) -> str:
    out, last = [], 0
    for match in _MARKER.finditer(answer):
        out.append(linkify(answer[last:match.start()]))
        for n in marker_numbers(match.group(1)):
            label = text(f"[{n}]")
            url, title = targets.get(n, ("", ""))
            out.append(link(url, label, title, "pc-cite") if url else label)
        last = match.end()
    out.append(linkify(answer[last:]))
    return "".join(out)


def linkify(value: str) -> str:
    """Escape ``value``; http(s) addresses become links and derived paper ids (``doc-…``) links to their card
    (the "nearest papers" of an answer that abstains name papers so).

    >>> linkify("see https://arxiv.org/abs/2305.14314.")
    'see <a href="https://arxiv.org/abs/2305.14314" target="_blank" rel="noopener noreferrer">https://arxiv.org/abs/2305.14314</a>.'
    """
    out, last = [], 0
    for match in _LINKABLE.finditer(value):
        out.append(text(value[last:match.start()]))
        found = match.group(0)
        target = found if found.startswith("http") else f"#{anchor(found)}"
        out.append(link(target, text(found), "" if found.startswith("http") else found, "" if found.startswith(
            "http") else "pc-cite"))
        last = match.end()
    out.append(text(value[last:]))
    return "".join(out)


def model_label(name: str) -> str:
    """A model file or hub name as a person reads it (quantisation in brackets)."""
    base = re.split(r"[/:]", name or "")[-1].removesuffix(".gguf").removesuffix(".GGUF")
    quant = re.search(r"[-_.]((?:i?q\d[\w]*)|f16|f32|bf16)$", base, re.IGNORECASE)
    words = re.split(r"[-_]+", base[:quant.start()] if quant else base)
    pretty = " ".join(w[:1].upper() + w[1:] if not re.fullmatch(r"\d+(\.\d+)?[bBmM]", w) else w.upper()
                      for w in words if w)
    return f"{pretty} ({quant.group(1).upper()})" if quant else pretty


def filters_label(filters: Any) -> str:
    """What a ``chat.retrieve.Filters`` restricts, in words ('' when nothing)."""
    if filters is None:
        return ""
    if isinstance(filters, str):
        return filters
    parts = []
    lo, hi = getattr(filters, "year_min", None), getattr(filters, "year_max", None)
    if lo is not None or hi is not None:
        parts.append(f"year {lo}\u2013{hi}" if lo is not None and hi is not None else
                     f"year from {lo}" if lo is not None else f"year until {hi}")
    for name, label in (("category", "category"), ("author", "author")):
        if getattr(filters, name, None):
            parts.append(f"{label} {getattr(filters, name)}")
    if getattr(filters, "paper_ids", None):
        parts.append("papers " + ", ".join(filters.paper_ids))
    return " · ".join(parts)


def filter_chip(filters: Any) -> str:
    label = filters_label(filters)
    if not label:
        return ""
    return f'<span class="pc-filter" title="Only papers matching this filter were searched">filter: {text(label)}</span>'


def badge(answer: Any, drafting: bool = False) -> str:
    """Which answer is shown: the model's, or the extractive one (while the model writes, or instead of it)."""
    mode, model = getattr(answer, "mode", ""), getattr(answer, "model", "")
    if mode == "llm":
        out = (f'<span class="pc-badge pc-llm" title="written by a local model, citations checked by code">'
               f'model: {text(model_label(model))}</span>')
    elif drafting:
        out = ('<span class="pc-badge pc-extractive" title="sentences quoted from the abstracts; the model\'s '
               'answer replaces this when it is done">extractive \u00b7 the model is writing\u2026</span>')
    elif model:
        out = ('<span class="pc-badge pc-extractive" title="the model\'s answer did not pass the citation check">'
               'extractive (model answer not used)</span>')
    else:
        out = '<span class="pc-badge pc-extractive" title="sentences quoted from the abstracts">extractive</span>'
    if getattr(answer, "abstained", False):
        out += '<span class="pc-badge pc-abstained">not covered by the indexed papers</span>'
    return out


def citation_targets(answer: Any) -> dict[int, tuple[str, str]]:
    """Marker number -> (link, title): the paper's page, else its card in the sources panel."""
    targets: dict[int, tuple[str, str]] = {}
    for c in answer.citations:
        targets.setdefault(int(c.n), (c.url if safe_url(c.url) else f"#{anchor(c.paper_id)}", c.title))
    return targets


def render_answer(answer: Any, filters: Any = None, markdown: str = "") -> str:
    """The chat message for a finished answer: badge, filter, linked text, notes, references, copy, trace."""
    body = link_markers(answer.answer, citation_targets(answer))
    notes = render_notice(getattr(answer, "notes", ()))
    copy = (f'<button class="pc-copy" type="button" title="Copy this answer as Markdown with its references">'
            f'Copy</button><div class="pc-md" hidden title="{attr(markdown)}"></div>') if markdown else ""
    return (f'<div class="pc-answer"><div class="pc-head">{badge(answer)}{filter_chip(filters)}{copy}</div>'
            f'<div class="pc-text">{body}</div>{notes}{render_references(answer)}{render_trace(answer)}</div>')


def render_draft(answer: Any, partial: str = "", filters: Any = None) -> str:
    """The message while the model writes: the extractive answer now, the model's text streaming below it."""
    body = link_markers(answer.answer, citation_targets(answer))
    writing = (f'<div class="pc-stream"><div class="pc-stream-head">Model answer (being written; replaces the '
               f'quoted answer when done)</div><div class="pc-text">{text(partial)}{CURSOR}</div></div>')
    return (f'<div class="pc-answer pc-streaming"><div class="pc-head">{badge(answer, drafting=True)}'
            f'{filter_chip(filters)}</div><div class="pc-text">{body}</div>{render_references(answer)}{writing}</div>')


def render_partial(partial: str) -> str:
    """The message while an answer streams in with nothing else to show yet: escaped text and a cursor."""
    return f'<div class="pc-answer pc-streaming"><div class="pc-text">{text(partial)}{CURSOR}</div></div>'


def render_waiting(message: str) -> str:
    """A placeholder message (searching, still indexing)."""
    return f'<div class="pc-answer pc-streaming"><div class="pc-wait">{text(message)}</div></div>'


def render_references(answer: Any) -> str:
    """The answer's numbered references under it, so an answer read alone (or copied) still names its sources."""
    papers = {s.paper_id: s.paper for s in getattr(answer, "sources", ())}
    items = []
    for c in sorted(answer.citations, key=lambda c: c.n):
        paper = papers.get(c.paper_id)
        derived = paper is not None and not paper.title
        name = f'<span class="pc-derived" title="{DERIVED_TIP}">{text(c.title)}</span>' if derived else text(c.title)
        target = c.url if safe_url(c.url) else ""
        where = link(target, text(c.url), c.title) if target else text(c.paper_id)
        items.append(f'<li class="pc-ref {anchor(c.paper_id)}">{text(f"[{c.n}]")} {name} \u2014 {where}</li>')
    return f'<details class="pc-refs" open><summary>References</summary><ul>{"".join(items)}</ul></details>' \
        if items else ""


def render_user(question: str) -> str:
    return f'<div class="pc-question">{text(question)}</div>'


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
             ("unsupported sentences", str(answer.unsupported))]
    facts_html = "".join(f"<li><b>{k}</b>: {v}</li>" for k, v in facts)
    table = ("<table><tr><th>rank</th><th>paper</th><th>score</th><th>dense</th><th>keyword</th></tr>"
             f"{rows}</table>") if rows else "<p>nothing retrieved</p>"
    return f'<details class="pc-trace"><summary>{summary}</summary>{table}<ul>{facts_html}</ul></details>'


def render_error(message: str) -> str:
    """A failure message (offline arXiv, bad filter) as an escaped warning."""
    return f'<div class="pc-error">\u26a0 {text(message)}</div>'


def render_notice(lines: Sequence[str]) -> str:
    """Escaped notices (first-start ingest, model fallback), one line each."""
    return "".join(f'<div class="pc-warn">{text(line)}</div>' for line in lines if line)


def render_ingest(report: Any, max_rejections: int = 10, rename: Mapping[str, str] | None = None) -> str:
    """The result of adding papers: sources that failed as a whole as errors, then the summary and the first
    rejections. ``rename`` maps server paths (uploads) to the names the user knows them by."""
    def shown(source: str) -> str:
        for path, name in (rename or {}).items():
            source = source.replace(path, name)
        return source
    rejected = list(report.rejected)
    errors = "".join(render_error(f"Could not add papers from {shown(r.source)}: {r.reason}")
                     for r in rejected if r.line is None)
    items = "".join(f"<li>{text(shown(str(r)))}</li>" for r in rejected[:max_rejections])
    more = f"<li>… and {len(rejected) - max_rejections} more</li>" if len(rejected) > max_rejections else ""
    details = f"<details><summary>{len(rejected)} rejected</summary><ul>{items}{more}</ul></details>" if items else ""
    note = render_notice([report.stale_note])
    return (f'{errors}<div class="pc-ingest"><p>{text(report.summary())} ({report.seconds:.1f}s)</p>'
            f'{details}</div>{note}')


def render_progress(label: str, done: int, total: int | None) -> str:
    """A progress bar with its line of text (first-start indexing in the page)."""
    bar = f'<progress value="{done}" max="{total}"></progress>' if total else "<progress></progress>"
    return f'<div class="pc-progress" role="status">{bar}<span>{text(label)}</span></div>'


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
