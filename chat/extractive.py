"""Answers without a language model: the most relevant sentences of the top papers, cited.

Every sentence of the top papers is scored by meaning (cosine with the query) plus
keyword overlap; the best are kept (a few per paper, none far below the best one),
near-duplicates dropped (the same abstract often comes from two sources), and the
result reads in paper rank order, each paper's sentences in their original order,
each sentence with its citation.

>>> from ingest.records import make_paper
>>> papers = [make_paper(raw_id="2305.14314", title="QLoRA", abstract=(
...     "We present QLoRA. QLoRA reduces memory usage enough to finetune a 65B model on one GPU. "
...     "Our best model family is named Guanaco.")), make_paper(title="Cats", abstract="Cats purr when content.")]
>>> print(extractive_answer("How does QLoRA reduce memory usage?", papers, vectors=None).text)
Extractive answer (no language model):
<BLANKLINE>
QLoRA reduces memory usage enough to finetune a 65B model on one GPU [1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chat.sentences import content_words, jaccard, overlap, split_sentences
from ingest.records import Paper

LABEL = "Extractive answer (no language model):"


@dataclass(frozen=True)
class ExtractiveConfig:
    """How much an extractive answer quotes. Defaults were read against the seed questions."""

    max_papers: int = 3
    max_sentences: int = 5
    per_paper: int = 2
    min_relative: float = 0.7  # a sentence scoring below 70% of the best one is not quoted
    keyword_weight: float = 0.3
    duplicate_cosine: float = 0.9  # near-duplicate sentences (cosine) are quoted once
    duplicate_jaccard: float = 0.8  # the same without vectors, on content words
    min_words: int = 4


@dataclass(frozen=True)
class Pick:
    paper: int  # index into the papers given
    position: int  # sentence index in the abstract
    sentence: str
    score: float


@dataclass(frozen=True)
class Extract:
    text: str
    picks: tuple[Pick, ...]
    order: tuple[int, ...]  # paper indexes in citation order: [n] cites papers[order[n - 1]]


def score_sentences(query: str, papers: Sequence[Paper], vectors, config: ExtractiveConfig) -> list[Pick]:
    """Every sentence of the papers with its relevance to ``query`` (cosine + weighted keyword overlap)."""
    items = [(i, j, s) for i, p in enumerate(papers) for j, s in enumerate(split_sentences(p.abstract))
             if len(s.split()) >= config.min_words]
    if not items:
        return []
    keyword = np.array([overlap(query, s) for _, _, s in items])
    if vectors is None:
        meaning = np.zeros(len(items))
    else:
        matrix = vectors([query] + [s for _, _, s in items])
        meaning = matrix[1:] @ matrix[0]
    scores = meaning + config.keyword_weight * keyword
    return [Pick(i, j, s, float(x)) for (i, j, s), x in zip(items, scores)]


def select(picks: list[Pick], vectors, config: ExtractiveConfig) -> list[Pick]:
    """The best picks under the per-paper, relative-score and near-duplicate limits."""
    ranked = sorted(picks, key=lambda p: -p.score)
    if not ranked or ranked[0].score <= 0:
        return ranked[:1]
    floor = config.min_relative * ranked[0].score
    chosen: list[Pick] = []
    per_paper: dict[int, int] = {}
    for pick in ranked:
        if pick.score < floor or len(chosen) >= config.max_sentences:
            break
        if per_paper.get(pick.paper, 0) >= config.per_paper or _duplicate(pick, chosen, vectors, config):
            continue
        chosen.append(pick)
        per_paper[pick.paper] = per_paper.get(pick.paper, 0) + 1
    return chosen


def _duplicate(pick: Pick, chosen: list[Pick], vectors, config: ExtractiveConfig) -> bool:
    if not chosen:
        return False
    if vectors is not None:
        matrix = vectors([pick.sentence] + [c.sentence for c in chosen])
        return bool(np.max(matrix[1:] @ matrix[0]) >= config.duplicate_cosine)
    words = content_words(pick.sentence)
    return any(jaccard(words, content_words(c.sentence)) >= config.duplicate_jaccard for c in chosen)


def cite(sentence: str, n: int) -> str:
    """``cite("It works.", 2)`` -> 'It works [2].' (the marker goes before the closing punctuation)."""
    body = sentence.rstrip()
    if body[-1:] in ".!?" and body[-2:-1] not in ".!?":
        return f"{body[:-1].rstrip()} [{n}]{body[-1]}"
    return f"{body} [{n}]"


def extractive_answer(query: str, papers: Sequence[Paper], vectors=None,
                      config: ExtractiveConfig = ExtractiveConfig()) -> Extract:
    """Quote the most relevant sentences of the first ``max_papers`` papers (best first), grouped by paper."""
    top = list(papers[:config.max_papers])
    chosen = select(score_sentences(query, top, vectors, config), vectors, config)
    order = tuple(sorted({p.paper for p in chosen}))  # papers keep their retrieval rank
    paragraphs = []
    for n, paper in enumerate(order, start=1):
        mine = sorted((p for p in chosen if p.paper == paper), key=lambda p: p.position)
        paragraphs.append(" ".join(cite(p.sentence, n) for p in mine))
    text = LABEL + "\n\n" + "\n\n".join(paragraphs) if paragraphs else LABEL + " no sentence matched the question."
    return Extract(text, tuple(chosen), order)
