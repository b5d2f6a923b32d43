"""Does a source support a claim? Meaning and words, then the contradictions that similarity misses.

A claim (one answer sentence, markers stripped) is compared with a source (its abstract
split into sentences, plus its title). It is *supported* when it is close in meaning to a
source sentence (MiniLM cosine) or its content words are mostly in the source, and none of
these contradictions holds:

- a **number** in the claim that the source never states ("12 GB" against "48GB"), or states of
  another quantity ("an acceptance rate of 4.5 million" against "4.5 million suggestions were
  made" and "an acceptance rate of 22%"), or gives "respectively" to another thing ("GPT-4 identifies 67%"
  against "ChatGPT and GPT-4 identify 67% and 87%, respectively");
- a **name** in the claim (a method, model or dataset: "QLoRA", "GPT-4", "Guanaco") that the
  source never mentions, spelled out or as an acronym;
- **negation** in the claim but not in the source sentence it matches, or the reverse
  ("QLoRA cannot finetune…" against "…enough to finetune…");
- an **antonym swap** ("increases" against "reduces").

Thresholds are calibrated on labelled claim/source pairs (``python -m benchmarks.calibrate
support``; benchmarks/RESULTS.md, "Citation check").

>>> source = ["We present QLoRA, which finetunes a 65B model on a single 48GB GPU.",
...           "It does not degrade 16-bit task performance."]
>>> [judge(c, source, vectors=None).supported for c in (
...     "QLoRA finetunes a 65B model on a single 48GB GPU.",
...     "QLoRA cannot finetune a 65B model on a single 48GB GPU.",
...     "QLoRA finetunes a 65B model on a single 24GB GPU.",
...     "LoRA-Max finetunes a 65B model on a single 48GB GPU.")]
[True, False, False, False]
>>> judge("QLoRA finetunes a 65B model on a single 24GB GPU.", source, None).problems
('number 24 not in source',)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from chat.contradictions import contradictions
from chat.respectively import swapped
from chat.sentences import content_words

Vectors = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class SupportConfig:
    """Calibrated on benchmarks/support_pairs.jsonl (see benchmarks/RESULTS.md, "Citation check")."""

    min_cosine: float = 0.62  # a source sentence this close in meaning supports the claim...
    min_overlap: float = 0.75  # ...or this share of the claim's content words is in the source
    floor_cosine: float = 0.35  # below this no word overlap makes a claim supported (different topic)
    align_words: float = 0.5  # the sentence a claim paraphrases: cosine plus this much of its word overlap
    without_negates: bool = True  # "without extra weights" negates "needs extra weights"
    check_numbers: bool = True
    check_names: bool = True
    check_negation: bool = True
    check_antonyms: bool = True
    check_quantities: bool = True  # a number the source states, said of another quantity ("acceptance rate of 4.5M")


@dataclass(frozen=True)
class Support:
    supported: bool
    cosine: float  # best cosine of the claim with one source sentence (two adjacent ones joined count too)
    overlap: float  # share of the claim's content words found in the source
    sentence: str  # the source sentence the claim matches best
    problems: tuple[str, ...]  # the contradictions found, readable

    @property
    def score(self) -> float:
        """For choosing between sources: meaning first, words second; a contradiction sinks it."""
        return self.cosine + 0.25 * self.overlap - (1.0 if self.problems else 0.0)


# "one" is left out: "one of the", "one GPU" for "a single GPU" are not numbers worth contradicting.
def judge(claim: str, sentences: Sequence[str], vectors: Vectors | None, config: SupportConfig = SupportConfig(),
          title: str = "") -> Support:
    """Whether ``sentences`` (one source, in order) support ``claim``; see the module docstring."""
    return judge_many([claim], [(list(sentences), title)], vectors, config)[0][0]


def judge_many(claims: Sequence[str], sources: Sequence[tuple[list[str], str]], vectors: Vectors | None,
               config: SupportConfig = SupportConfig(), question: str = "") -> list[list[Support]]:
    """``result[i][j]``: how source ``j`` (its sentences and title) supports claim ``i``; one embedding pass.

    Words a claim repeats from the ``question`` ("the biggest model … on a 48GB card is …") are
    not held against it when the source words them otherwise; numbers and names still must be
    in the source, so a false premise in the question is not let through.
    """
    windows = [_windows(sents) for sents, _ in sources]
    cosines = _cosines(list(claims), windows, vectors)
    out = []
    for i, claim in enumerate(claims):
        row = []
        for j, (sents, title) in enumerate(sources):
            row.append(_support(claim, sents, title, windows[j], cosines[i][j], config, question))
        out.append(row)
    return out


def _windows(sentences: list[str]) -> list[str]:
    """Each sentence, then each pair of adjacent sentences (an answer sentence often joins two)."""
    return list(sentences) + [f"{a} {b}" for a, b in zip(sentences, sentences[1:])]


def _cosines(claims: list[str], windows: list[list[str]], vectors: Vectors | None) -> list[list[np.ndarray]]:
    if vectors is None or not claims:
        return [[np.zeros(len(w)) for w in windows] for _ in claims]
    flat = [w for ws in windows for w in ws]
    matrix = vectors(claims + flat)
    sims = matrix[len(claims):] @ matrix[:len(claims)].T  # windows x claims
    out, at = [[] for _ in claims], 0
    for ws in windows:
        for i in range(len(claims)):
            out[i].append(sims[at:at + len(ws), i])
        at += len(ws)
    return out


def _support(claim: str, sentences: list[str], title: str, windows: list[str], cosines: np.ndarray,
             config: SupportConfig, question: str = "") -> Support:
    if not sentences:
        return Support(False, 0.0, 0.0, "", ("empty source",))
    whole = f"{title} {' '.join(sentences)}"
    overlap = _overlap(claim, whole, question)
    words = np.array([_overlap(claim, w) for w in windows])
    cosine = float(cosines.max()) if len(cosines) else 0.0
    aligned = windows[int(np.argmax(cosines + config.align_words * words))]
    sentence = aligned if _is_single(aligned, sentences) else _best_single(claim, aligned, sentences)
    problems = contradictions(claim, sentence, whole, check_numbers=config.check_numbers, check_names=config.check_names,
                              check_negation=config.check_negation, check_antonyms=config.check_antonyms,
                              without_negates=config.without_negates, check_quantities=config.check_quantities,
                              question=question)
    if config.check_quantities:
        problems += swapped(claim, whole)  # a number the source gives "respectively" to another thing
    close = cosine >= config.min_cosine or (overlap >= config.min_overlap and
                                           (_vectorless(cosines) or cosine >= config.floor_cosine))
    return Support(close and not problems, round(cosine, 4), round(overlap, 4), sentence, problems)


def _is_single(window: str, sentences: list[str]) -> bool:
    return window in sentences


def _vectorless(cosines: np.ndarray) -> bool:
    return not len(cosines) or float(np.max(cosines)) == 0.0


def _best_single(claim: str, window: str, sentences: list[str]) -> str:
    inside = [s for s in sentences if s in window]
    return max(inside, key=lambda s: _overlap(claim, s)) if inside else sentences[0]


def _overlap(claim: str, text: str, question: str = "") -> float:
    wanted = set(content_words(_dehyphen(claim))) - set(content_words(_dehyphen(question)))
    if not wanted:
        return 0.0
    return len(wanted & set(content_words(_dehyphen(text)))) / len(wanted)


def _dehyphen(text: str) -> str:
    """'pre-trained' and 'pretrained' are one word; 'fine-tuning' and 'finetuning' too."""
    return re.sub(r"(?<=[a-z])-(?=[a-z])", "", text)
