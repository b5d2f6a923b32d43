"""Answers without a language model: the sentences of the top papers that answer, quoted and cited.

Sentences are scored by chat/evidence.py (meaning, keywords, and whether the sentence
states a result or a method rather than background). The best one anchors the answer;
others join it only when they score close to it *and* clear an absolute cosine floor, a few
per paper, and a paper other than the anchor's must score closer still (unless the question
compares), so an unrelated paper never pads the answer. Near-duplicates (the same abstract from two sources) are quoted
once. The answer reads in paper rank order, each paper's sentences in their original
order, each with its citation.

>>> from ingest.records import make_paper
>>> papers = [make_paper(raw_id="2305.14314", title="QLoRA", abstract=(
...     "Finetuning large models is very expensive today. QLoRA reduces memory usage enough to finetune a "
...     "65B model on one GPU. Our best model family is named Guanaco.")),
...     make_paper(title="Cats", abstract="Cats purr when they are content and fed.")]
>>> print(extractive_answer("How does QLoRA reduce memory usage?", papers, vectors=None).text)
Quoted from the abstracts:
<BLANKLINE>
QLoRA reduces memory usage enough to finetune a 65B model on one GPU [1].
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from chat.citations import cite
from chat.relevance import COMPARES, RelevanceConfig, Scored, question_kind, score_sentences
from chat.sentences import content_words, jaccard
from chat.naming import name_phrases, naming
from ingest.records import Paper

LABEL = "Quoted from the abstracts:"


@dataclass(frozen=True)
class ExtractiveConfig:
    """How much an extractive answer quotes. Read against our own question set (benchmarks/answer_questions.jsonl)."""

    max_papers: int = 3
    max_sentences: int = 4
    per_paper: int = 3
    same_paper_margin: float = 1.2  # a sentence of the best sentence's paper within this of its score is quoted...
    other_paper_margin: float = 0.1  # ...one of another paper only this close (scores include a rank penalty)
    min_cosine: float = 0.3  # no sentence below this cosine with the question is quoted, however it ranks
    anchor_min_cosine: float = 0.2  # the best sentence about one of the things a question compares
    relevance: RelevanceConfig = RelevanceConfig()
    duplicate_cosine: float = 0.9  # near-duplicate sentences (cosine) are quoted once
    duplicate_jaccard: float = 0.8  # the same without vectors, on content words


@dataclass(frozen=True)
class Extract:
    text: str
    picks: tuple[Scored, ...]
    order: tuple[int, ...]  # paper indexes in citation order: [n] cites papers[order[n - 1]]


def select(picks: list[Scored], vectors, config: ExtractiveConfig, anchors: Sequence[list[Scored]] = ()) -> list[Scored]:
    """The best picks under the floors, the per-paper limit and the near-duplicate rule.

    ``anchors`` (for a comparison: the picks about each thing compared) each contribute their
    best pick first, so every side of the comparison is quoted.
    """
    ranked = sorted(picks, key=lambda p: -p.score)
    if not ranked:
        return []
    chosen: list[Scored] = []
    for group in anchors:
        best = max(group, key=lambda p: p.score, default=None)
        if best is not None and best not in chosen and (vectors is None or best.cosine >= config.anchor_min_cosine):
            chosen.append(best)
    chosen = chosen or [ranked[0]]
    top = chosen[0]
    per_paper: dict[int, int] = {}
    for pick in chosen:
        per_paper[pick.paper] = per_paper.get(pick.paper, 0) + 1
    for pick in ranked:
        if len(chosen) >= config.max_sentences:
            break
        if pick in chosen:
            continue
        margin = config.same_paper_margin if pick.paper in per_paper else config.other_paper_margin
        if pick.score < top.score - margin or (vectors is not None and pick.cosine < config.min_cosine):
            continue
        if per_paper.get(pick.paper, 0) >= config.per_paper or _duplicate(pick, chosen, vectors, config):
            continue
        chosen.append(pick)
        per_paper[pick.paper] = per_paper.get(pick.paper, 0) + 1
    return chosen


def comparison_anchors(query: str, papers: Sequence[Paper], picks: list[Scored], config: ExtractiveConfig
                       ) -> list[list[Scored]]:
    """For a question comparing named things ("How do ALiBi and Unlimiformer …"): per thing, the picks of the
    paper most about it, scored without the rank penalty (the second thing's paper ranks lower by nature)."""
    holders = comparison_papers(query, papers)
    if not holders:
        return []
    unranked = [replace(p, score=p.score - config.relevance.paper_rank * p.paper) for p in picks]
    return [[p for p in unranked if p.paper == holder] for holder in holders[:3]]


def comparison_papers(query: str, papers: Sequence[Paper]) -> list[int]:
    """For a comparison of named things: the index of the paper most about each (empty when not two)."""
    if question_kind(query) != "comparison":
        return []
    if _one_finding(query, papers):
        return []
    holders = list(dict.fromkeys(h for h in (_most_about(t, papers) for t in name_phrases(query)) if h is not None))
    return holders if len(holders) >= 2 else []


def _one_finding(query: str, papers: Sequence[Paper]) -> bool:
    """Whether "X and Y" in ``query`` asks for one paper's finding on the pair ("what share of their mistakes
    do ChatGPT and GPT-4 recognize?"): the top paper names them as a pair too, and the question does not
    say "compare". A paper that names Y beside its own X ("trained on the outputs of InstructGPT") is not one.

    >>> from ingest.records import make_paper
    >>> _one_finding("What do ChatGPT and GPT-4 recognize?", [make_paper(abstract="GPT-4 and ChatGPT identify 87%.")])
    True
    """
    things = [re.escape(t).replace(r"\ ", r"[\s-]*") for t in name_phrases(query)]
    if not papers or len(things) != 2 or COMPARES.search(query):
        return False
    pairs = [rf"(?<![\w-]){a}(?:\s*,\s*|\s*/\s*|\s+(?:and|or|&)\s+){b}(?![\w-])" for a, b in (things, things[::-1])]
    return any(re.search(p, papers[0].abstract, re.IGNORECASE) for p in pairs)


def _most_about(thing: str, papers: Sequence[Paper]) -> int | None:
    """The paper naming ``thing`` most (its title counts three times); the better-ranked one on a tie."""
    counts = naming(thing, papers)
    best = max(range(len(papers)), key=lambda i: (counts[i], -i), default=None)
    return best if best is not None and counts[best] > 0 else None


def _duplicate(pick: Scored, chosen: list[Scored], vectors, config: ExtractiveConfig) -> bool:
    if vectors is not None:
        matrix = vectors([pick.sentence] + [c.sentence for c in chosen])
        return bool(np.max(matrix[1:] @ matrix[0]) >= config.duplicate_cosine)
    words = content_words(pick.sentence)
    return any(jaccard(words, content_words(c.sentence)) >= config.duplicate_jaccard for c in chosen)


def extractive_answer(query: str, papers: Sequence[Paper], vectors=None,
                      config: ExtractiveConfig = ExtractiveConfig()) -> Extract:
    """Quote the sentences of the first ``max_papers`` papers that answer ``query``, grouped by paper."""
    # each thing compared may have its own paper further down
    comparing = question_kind(query) == "comparison" and not _one_finding(query, papers)
    top = list(papers if comparing else papers[:config.max_papers])
    scored = score_sentences(query, top, vectors, config.relevance)
    chosen = select(scored, vectors, config, comparison_anchors(query, top, scored, config))
    order = tuple(sorted({p.paper for p in chosen}))  # papers keep their retrieval rank
    paragraphs = []
    for n, paper in enumerate(order, start=1):
        mine = sorted((p for p in chosen if p.paper == paper), key=lambda p: p.position)
        paragraphs.append(" ".join(cite(p.sentence, [n]) for p in mine))
    text = LABEL + "\n\n" + "\n\n".join(paragraphs) if paragraphs else LABEL + " no sentence matched the question."
    return Extract(text, tuple(chosen), order)
