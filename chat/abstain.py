"""The evidence gate: when the retrieved papers do not cover the question, say so and list the nearest ones.

"Not covered" is decided here, before any generation, from four signals of the top papers:

- ``similarity``: the best cosine between the question and a retrieved chunk or a sentence of a
  top paper (a short question matches a sentence better than a 128-token chunk);
- ``coverage``: the share of the question's words found in one top paper, each weighted by how
  rare it is in the index, with hyphens, case, inflection and glued words normalised
  (``chat.evidence``): "warmup", "LAMB" count, "model" hardly does;
- ``names``: 1 when every method, model or dataset the question names (LAMB, Swin Transformer,
  GPT-4; ``chat.subject.names``) is what a top paper is *about* — named in its title or twice in
  its abstract — else 0 (also when it names none). A question about an optimiser that the papers
  mention once, in passing, gets nothing from it, even when it also names BERT; one about a
  paper's own method does;
- ``absent``: 1 when the question names something ("Europe", "vitamin C") that no top paper
  mentions at all: a paper on vitamin D does not answer a question about vitamin C.

The answer abstains when ``similarity + coverage_weight * coverage + names_weight * names -
absent_weight * absent`` is below ``threshold``, unless a top paper is about every name the
question gives and has nearly all its words (``named_coverage``): MiniLM reads names it never
saw poorly. A question of
``long_words`` words or more is also scored sentence by sentence and keeps its best part, so that
the context a researcher gives around the question does not count against it. Weights and
threshold were calibrated on training questions only (``python -m benchmarks.calibrate
abstention``; benchmarks/RESULTS.md, "Abstention").

>>> from ingest.records import make_paper
>>> paper = make_paper(raw_id="2305.14314", title="QLoRA", abstract="QLoRA finetunes pre-trained 65B models on one GPU.")
>>> ev = measure("How do I bake sourdough bread?", [(paper, 0.08)])
>>> ev.coverage, ev.names, decide(ev)
(0.0, 0.0, True)
>>> ev = measure("How does QLoRA finetune pretrained 65B models?", [(paper, 0.71)])
>>> ev.coverage, ev.names, decide(ev)
(1.0, 1.0, False)
>>> measure("How does the LAMB optimizer finetune models?", [(paper, 0.45)]).names
0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chat.evidence import Rarity, absent, coverage, idf_weights, key, name_focus, units
from chat.sentences import display_title, split_sentences
from chat.subject import names as named
from ingest.records import Paper

Part = tuple[float, float, float, float]  # (similarity, coverage, names, absent) of the question or a sentence


@dataclass(frozen=True)
class AbstainConfig:
    """Calibrated thresholds (benchmarks/RESULTS.md, "Abstention"); ``enabled=False`` never abstains."""

    threshold: float = 0.71
    coverage_weight: float = 0.25
    names_weight: float = 0.1
    absent_weight: float = 0.03  # taken off when the question names something no top paper mentions
    top_papers: int = 3  # coverage, names and sentence similarity are measured on this many top papers
    long_words: int = 40  # a question this long is also scored sentence by sentence
    nearest: int = 3  # papers listed when abstaining
    # A question whose every name a top paper is about, and nearly all of whose words that paper has, is
    # covered whatever MiniLM makes of names it never saw ("What does the HumanEval set introduced with Codex
    # measure?": cosine 0.33). Neutral on every calibration set (benchmarks/RESULTS.md, "Abstention").
    named_coverage: float = 0.8
    named_similarity: float = 0.3
    enabled: bool = True

    def support(self, part: Part) -> float:
        score = part[0] + self.coverage_weight * part[1] + self.names_weight * part[2] - self.absent_weight * part[3]
        return max(score, self.threshold) if self.named_covered(part) else score

    def named_covered(self, part: Part) -> bool:
        return part[2] == 1.0 and part[1] >= self.named_coverage and part[0] >= self.named_similarity


@dataclass(frozen=True)
class Evidence:
    dense: float  # similarity of the best part: cosine with a retrieved chunk or a top paper's sentence
    coverage: float  # rarity-weighted share of its words found in one top paper
    names: float  # 1.0 when a top paper is about every method/model it names (0.0: it names none)
    support: float  # the best part's weighted sum, compared with the threshold
    parts: tuple[Part, ...] = ()  # the whole question first, then its sentences (long questions)
    absent: float = 0.0  # 1.0 when it names something ("Europe", "vitamin C") no top paper mentions

    def to_json(self) -> dict[str, float]:
        return {k: round(getattr(self, k), 4) for k in ("dense", "coverage", "names", "absent", "support")}


def measure(query: str, papers: Sequence[tuple[Paper, float]], config: AbstainConfig = AbstainConfig(),
            rarity: Rarity | None = None, vectors=None) -> Evidence:
    """Evidence for ``query`` from (paper, chunk cosine) pairs, best first.

    ``rarity`` weighs words (:func:`rarity_of` a retriever); ``vectors`` (chat.sentences.SentenceVectors)
    adds sentence similarity and sentence-by-sentence scoring of long questions.
    """
    if not papers:
        return Evidence(0.0, 0.0, 0.0, 0.0)
    top = papers[:config.top_papers]
    texts = [f"{p.title} {p.abstract}" for p, _ in top]
    sentences = split_sentences(query) if len(query.split()) >= config.long_words else []
    pieces = [query, *(s for s in sentences if len(s.split()) >= 5)] if len(sentences) > 1 else [query]
    chunk = max(float(d) for _, d in papers)
    similar = _similarities(pieces, [p for p, _ in top], vectors)
    similar = [max(similar[0], chunk)] + (similar[1:] if vectors is not None else [chunk] * (len(pieces) - 1))
    piece_units = [units(p) for p in pieces]
    keys = list(dict.fromkeys(key(u) for us in piece_units for u in us))
    weight = dict(rarity(keys)) if rarity is not None else {}
    parts = tuple((similar[i], max(coverage(piece_units[i], t, weight) for t in texts),
                   float(name_focus(named(pieces[i]), [(p.title, p.abstract) for p, _ in top]) == 1.0),
                   absent(pieces[i], named(pieces[i]), texts))
                  for i in range(len(pieces)))
    best = max(parts, key=config.support)
    return Evidence(*best[:3], config.support(best), parts, best[3])


def _similarities(pieces: Sequence[str], papers: Sequence[Paper], vectors) -> list[float]:
    """Per piece, its best cosine with a sentence of ``papers`` (0.0 each without ``vectors``)."""
    sentences = [s for p in papers for s in (split_sentences(p.abstract) or [p.abstract])]
    if vectors is None or not sentences:
        return [0.0] * len(pieces)  # the question's chunk cosine stands in for every piece (see measure)
    matrix = vectors([*pieces, *sentences])
    cosines = matrix[len(pieces):] @ matrix[:len(pieces)].T
    return [float(x) for x in np.max(cosines, axis=0)]


def rarity_of(retriever) -> Rarity | None:
    """Term weights from a retriever's keyword index (chat.retrieve.Retriever); None for one without."""
    frequency, matching = getattr(retriever, "document_frequency", None), getattr(retriever, "matching", None)
    if frequency is None or matching is None:
        return None
    return idf_weights(frequency, matching())


def decide(evidence: Evidence, config: AbstainConfig = AbstainConfig()) -> bool:
    """True when the evidence is too weak to answer from."""
    return config.enabled and evidence.support < config.threshold


def abstention_text(papers: Sequence[Paper], config: AbstainConfig = AbstainConfig(), filters=None,
                    matching: int | None = None, indexed: int | None = None) -> str:
    """What the user reads instead of an answer: the verdict, then the nearest papers.

    With ``filters`` (chat.retrieve.Filters) the verdict names them, so an empty result reads as
    what it is: ``matching`` papers pass them, ``indexed`` are in the index.

    >>> from chat.retrieve import Filters
    >>> abstention_text([], filters=Filters(year_min=2030, year_max=2030), matching=0, indexed=180)
    'No indexed paper matches: year 2030–2030. Widen or clear the filters to search all 180 indexed papers.'
    """
    scope = filters.describe() if filters is not None else ""
    if not papers:
        if scope and indexed != 0:
            every = f"all {indexed} indexed papers" if indexed else "every indexed paper"
            return f"No indexed paper matches: {scope}. Widen or clear the filters to search {every}."
        return "No paper is indexed yet."
    if scope and matching == 1:
        head = f"The only indexed paper matching {scope} does not cover this question."
    elif scope:
        count = f"{matching} " if matching is not None else ""
        head = f"The {count}indexed papers matching {scope} do not cover this question."
    else:
        head = "The indexed papers do not cover this question."
    nearest = [f"- {display_title(p.title, p.abstract, p.paper_id)} ({p.url or p.paper_id})"
               for p in papers[:config.nearest]]
    return head + " The nearest papers are:\n" + "\n".join(nearest)
