"""Papers that name what the question names are answered from first.

Retrieval ranks by meaning and keywords, so a paper on a neighbouring method can outrank the paper a
question is about: for "How many associations can MALMEN update?" the MEMIT paper ("scale up to
thousands of associations") matches better than the MALMEN paper ("editing up to thousands of facts"),
and quoting it answers about the wrong method. After the evidence gate has decided (it is calibrated on
retrieval order), the retrieved papers are ordered by how many of the question's names they mention,
retrieval rank breaking ties, so the paper a question names is quoted, cited and shown first.

>>> from ingest.records import make_paper
>>> memit = make_paper(title="Mass-Editing Memory", abstract="MEMIT scales to thousands of associations.")
>>> malmen = make_paper(title="Massive Editing", abstract="We propose MALMEN, which edits thousands of facts.")
>>> [p.title for p in named_first("How many associations can MALMEN update?", [memit, malmen])]
['Massive Editing', 'Mass-Editing Memory']
>>> [p.title for p in named_first("How many associations can be updated?", [memit, malmen])]
['Mass-Editing Memory', 'Massive Editing']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from chat.contradictions import names
from chat.relevance import question_kind
from chat.sentences import display_title
from chat.subject import names as subject_names
from ingest.records import Paper

T = TypeVar("T")


def name_phrases(question: str) -> list[str]:
    """Names in the question, adjacent ones joined: 'Unnatural Instructions', 'Constitutional AI', 'MEMIT'.

    >>> name_phrases("Where do labels come from in InstructGPT versus Constitutional AI?")
    ['InstructGPT', 'Constitutional AI']
    """
    phrases: list[str] = []
    for name in names(question):
        joined = f"{phrases[-1]} {name}" if phrases else ""
        if joined and joined in question:
            phrases[-1] = joined
        else:
            phrases.append(name)
    return phrases


def naming(thing: str, papers: Sequence[Paper]) -> list[int]:
    """How often each paper names ``thing`` (hyphens and spaces alike, any case), its title counting three times.

    >>> from ingest.records import make_paper
    >>> naming("chain of thought", [make_paper(title="Chain-of-Thought", abstract="A chain of thought helps.")])
    [4]
    """
    pattern = re.compile(r"(?<![\w-])" + re.escape(thing).replace(r"\ ", r"[\s-]*").replace(r"\-", r"[\s-]*")
                         + r"(?![\w-])", re.IGNORECASE)
    return [3 * len(pattern.findall(display_title(p.title, p.abstract))) + len(pattern.findall(p.abstract))
            for p in papers]


def named_first(question: str, items: Sequence[T], paper=lambda item: item) -> list[T]:
    """``items`` (papers, or hits whose ``paper(item)`` is one) ordered by how many of the question's names
    their paper mentions, most first; the original order breaks ties, and a question naming nothing (or comparing)
    keeps it. Names in parentheses do not count: a follow-up's rewrite appends the context it carries there
    ("Does it change the output? (SpD)"), which helps retrieval but is not what the user asked about."""
    wanted = subject_names(re.sub(r"\([^()]*\)", " ", question))
    # a comparison has two sides, one maybe unnamed ("MEMIT and in-context editing"): chat.extractive anchors both
    if not wanted or len(items) < 2 or question_kind(question) == "comparison":
        return list(items)
    papers = [paper(item) for item in items]
    mentioned = [0] * len(items)
    for name in wanted:
        for i, count in enumerate(naming(name, papers)):
            mentioned[i] += count > 0 or _glued(name, papers[i])
    return [items[i] for i in sorted(range(len(items)), key=lambda i: -mentioned[i])]


def _glued(name: str, paper: Paper) -> bool:
    """A long name inside a scraped word ("the Flan Collectionof tasks"); short ones ("SAM" in "same") do not count."""
    flat = re.sub(r"[^a-z0-9]", "", name.lower())
    return len(flat) >= 6 and flat in re.sub(r"[^a-z0-9]", "", f"{paper.title} {paper.abstract}".lower())
