"""An answer or a conversation as Markdown with numbered references, and the references as BibTeX.

A conversation is exported with one reference list: every paper any answer cites gets one
number, in order of first citation, and each answer's markers are renumbered to it, so
``[2]`` means the same paper everywhere in the file. Works on plain JSON records
(:func:`turn_record`), which is what the web app keeps in the browser.

>>> refs = [{"n": 1, "paper_id": "2305.14314", "title": "QLoRA", "derived": False, "url":
...          "https://arxiv.org/abs/2305.14314", "arxiv_id": "2305.14314", "authors": ["Tim Dettmers"], "year": 2023}]
>>> print(answer_markdown("QLoRA finetunes in 4 bits [1].", refs))
QLoRA finetunes in 4 bits [1].
<BLANKLINE>
**References**
<BLANKLINE>
1. QLoRA. Tim Dettmers (2023). arXiv:2305.14314. https://arxiv.org/abs/2305.14314
>>> print(bibtex(refs))
@misc{dettmers2023qlora,
  title = {QLoRA},
  author = {Tim Dettmers},
  year = {2023},
  eprint = {2305.14314},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2305.14314},
}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from chat.render import UNSUPPORTED_FLAG, marker_numbers

_MARKER = re.compile(r"\[(\d+(?:\s*[-\u2013,;]\s*\d+)*)\]")


def turn_record(question: str, answer: Any, filters: str = "") -> dict:
    """What the app keeps of one answered question: the texts, and each cited paper's reference data."""
    papers = {s.paper_id: s.paper for s in answer.sources}
    refs = []
    for c in sorted(answer.citations, key=lambda c: c.n):
        paper = papers.get(c.paper_id)
        refs.append({"n": int(c.n), "paper_id": c.paper_id, "title": c.title, "url": c.url,
                     "derived": bool(paper is not None and not paper.title),
                     "arxiv_id": getattr(paper, "arxiv_id", "") or "",
                     "authors": list(getattr(paper, "authors", ()) or ()),
                     "year": getattr(paper, "year", None), "categories": list(getattr(paper, "categories", ()) or ()),
                     "sentences": [c.supporting_sentence] if c.supporting_sentence else []})
    return {"question": question, "answer": answer.answer, "mode": answer.mode, "model": answer.model,
            "abstained": answer.abstained, "filters": filters, "refs": refs}


def reference_line(ref: dict) -> str:
    """``Title. Authors (year). arXiv:id. url`` (derived names say so)."""
    title = f"{ref['title']} (name derived from the abstract)" if ref.get("derived") else ref["title"]
    authors = ", ".join(ref.get("authors") or [])
    if len(ref.get("authors") or []) > 6:
        authors = ", ".join(ref["authors"][:6]) + " et al."
    parts = [title.rstrip(".") + "."]
    if authors or ref.get("year"):
        parts.append(f"{authors}{' ' if authors else ''}({ref['year'] or 'n.d.'}).")
    if ref.get("arxiv_id"):
        parts.append(f"arXiv:{ref['arxiv_id']}.")
    parts.append(ref.get("url") or f"(id {ref['paper_id']})")
    return " ".join(parts)


def _plain(answer: str) -> str:
    return answer.replace(UNSUPPORTED_FLAG, "*(unsupported)*")


def answer_markdown(answer: str, refs: Sequence[dict]) -> str:
    """One answer with its own numbered reference list."""
    lines = [f"{r['n']}. {reference_line(r)}" for r in refs]
    return _plain(answer) + ("\n\n**References**\n\n" + "\n".join(lines) if lines else "")


def conversation_markdown(title: str, turns: Sequence[dict]) -> tuple[str, list[dict]]:
    """The whole conversation and its references, renumbered across answers; returns (markdown, references)."""
    numbers: dict[str, int] = {}
    refs: list[dict] = []
    out = [f"# {title}", ""]
    for turn in turns:
        local = {}
        for ref in turn.get("refs", []):
            if ref["paper_id"] not in numbers:
                numbers[ref["paper_id"]] = len(numbers) + 1
                refs.append({**ref, "n": numbers[ref["paper_id"]]})
            local[ref["n"]] = numbers[ref["paper_id"]]
        body = _MARKER.sub(lambda m: "".join(f"[{local.get(n, n)}]" for n in marker_numbers(m.group(1))),
                           turn["answer"])
        note = f"\n\n*Searched only: {turn['filters']}*" if turn.get("filters") else ""
        out += [f"## {turn['question']}", "", _plain(body) + note, ""]
    if refs:
        out += ["## References", ""] + [f"{r['n']}. {reference_line(r)}" for r in refs]
    return "\n".join(out).rstrip() + "\n", refs


def bibtex(refs: Sequence[dict]) -> str:
    """One ``@misc`` entry per reference; arXiv ids as ``eprint``; keys unique within the file."""
    entries, keys = [], set()
    for ref in refs:
        key = _key(ref)
        while key in keys:
            key += "x"
        keys.add(key)
        fields = [("title", ref["title"]), ("author", " and ".join(ref.get("authors") or [])),
                  ("year", str(ref.get("year") or "")), ("eprint", ref.get("arxiv_id", "")),
                  ("archivePrefix", "arXiv" if ref.get("arxiv_id") else ""),
                  ("primaryClass", (ref.get("categories") or [""])[0]), ("url", ref.get("url", "")),
                  ("note", "title derived from the abstract; id " + ref["paper_id"] if ref.get("derived") else "")]
        body = "".join(f"  {name} = {{{_bib(value)}}},\n" for name, value in fields if value)
        entries.append(f"@misc{{{key},\n{body}}}")
    return "\n\n".join(entries)


def _key(ref: dict) -> str:
    author = (ref.get("authors") or ["anon"])[0].split()[-1]
    word = next((w for w in re.findall(r"[A-Za-z]+", ref["title"]) if len(w) > 3), "paper")
    return re.sub(r"[^a-z0-9]", "", f"{author}{ref.get('year') or ''}{word}".lower()) or "paper"


def _bib(value: str) -> str:
    """Braces and backslashes would end or break a BibTeX field: drop them."""
    return re.sub(r"[{}\\]", "", " ".join(str(value).split()))
