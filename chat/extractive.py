"""Answers without a language model: the sentences of the top papers that answer, quoted and cited.

Sentences are scored by chat/evidence.py (meaning, keywords, and whether the sentence
states a result or a method rather than background). The best one anchors the answer;
others join it only when they score close to it *and* clear an absolute floor, a few per
paper, and a paper other than the anchor's must score closer still, so an unrelated paper
never pads the answer. Near-duplicates (the same abstract from two sources) are quoted
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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chat.citations import cite
from chat.relevance import RelevanceConfig, Scored, question_kind, score_sentences
from chat.sentences import content_words, jaccard
from ingest.records import Paper

LABEL = "Quoted from the abstracts:"


@dataclass(frozen=True)
class ExtractiveConfig:
    """How much an extractive answer quotes. Read against our own question set (benchmarks/answer_questions.jsonl)."""

    max_papers: int = 3
    max_sentences: int = 4
    per_paper: int = 2
    min_relative: float = 0.8  # a sentence scoring below 80% of the best one is not quoted...
    other_paper_relative: float = 0.9  # ...and a second paper's sentence must reach 90% of it
    comparison_relative: float = 0.75  # unless the question compares, when a second paper is the point
    min_cosine: float = 0.4  # no sentence below this cosine with the question is quoted, however it ranks
    relevance: RelevanceConfig = RelevanceConfig()
    duplicate_cosine: float = 0.9  # near-duplicate sentences (cosine) are quoted once
    duplicate_jaccard: float = 0.8  # the same without vectors, on content words


@dataclass(frozen=True)
class Extract:
    text: str
    picks: tuple[Scored, ...]
    order: tuple[int, ...]  # paper indexes in citation order: [n] cites papers[order[n - 1]]


def select(picks: list[Scored], vectors, config: ExtractiveConfig, comparison: bool = False) -> list[Scored]:
    """The best picks under the floors, the per-paper limit and the near-duplicate rule."""
    ranked = sorted(picks, key=lambda p: -p.score)
    if not ranked:
        return []
    top = ranked[0]
    other = config.comparison_relative if comparison else config.other_paper_relative
    chosen: list[Scored] = [top]
    per_paper = {top.paper: 1}
    for pick in ranked[1:]:
        if len(chosen) >= config.max_sentences:
            break
        floor = (config.min_relative if pick.paper in per_paper else other) * top.score
        if pick.score < floor or (vectors is not None and pick.cosine < config.min_cosine):
            continue
        if per_paper.get(pick.paper, 0) >= config.per_paper or _duplicate(pick, chosen, vectors, config):
            continue
        chosen.append(pick)
        per_paper[pick.paper] = per_paper.get(pick.paper, 0) + 1
    return chosen


def _duplicate(pick: Scored, chosen: list[Scored], vectors, config: ExtractiveConfig) -> bool:
    if vectors is not None:
        matrix = vectors([pick.sentence] + [c.sentence for c in chosen])
        return bool(np.max(matrix[1:] @ matrix[0]) >= config.duplicate_cosine)
    words = content_words(pick.sentence)
    return any(jaccard(words, content_words(c.sentence)) >= config.duplicate_jaccard for c in chosen)


def extractive_answer(query: str, papers: Sequence[Paper], vectors=None,
                      config: ExtractiveConfig = ExtractiveConfig()) -> Extract:
    """Quote the sentences of the first ``max_papers`` papers that answer ``query``, grouped by paper."""
    top = list(papers[:config.max_papers])
    scored = score_sentences(query, top, vectors, config.relevance)
    chosen = select(scored, vectors, config, comparison=question_kind(query) == "comparison")
    order = tuple(sorted({p.paper for p in chosen}))  # papers keep their retrieval rank
    paragraphs = []
    for n, paper in enumerate(order, start=1):
        mine = sorted((p for p in chosen if p.paper == paper), key=lambda p: p.position)
        paragraphs.append(" ".join(cite(p.sentence, [n]) for p in mine))
    text = LABEL + "\n\n" + "\n\n".join(paragraphs) if paragraphs else LABEL + " no sentence matched the question."
    return Extract(text, tuple(chosen), order)
