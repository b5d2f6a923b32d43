"""Citation markers are parsed, repaired and checked by code, never trusted.

Markers look like ``[1]``, ``[1, 3]``, ``[1-3]``, ``[1][2]``, ``[ 2 ]`` or ``[Source 2]``.
Numbers that map to no source are removed (and counted); the rest are renumbered
in order of first citation, and each cited sentence is checked against the
abstracts it cites (best-sentence cosine and word overlap).

>>> parse_markers("A [1, 3]. B [2-4][6]. C [ 2 ] [Source 5].")[0].numbers
(1, 3)
>>> [m.numbers for m in parse_markers("B [2-4][6] and [ 2 ] [Source 5].")]
[(2, 3, 4, 6), (2, 5)]
>>> abstracts = ["QLoRA finetunes a 65B model on one 48GB GPU.", "LoRA adds low-rank adapters."]
>>> checked = check_citations("QLoRA finetunes 65B models on one GPU [2, 7]. LoRA adds adapters [1].",
...                           abstracts, vectors=None, config=CheckConfig())
>>> checked.text, checked.order, checked.removed
('QLoRA finetunes 65B models on one GPU [1]. LoRA adds adapters [2].', (2, 1), 1)
>>> [s.supported for s in checked.sentences]
[False, False]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from chat.sentences import content_words, overlap, split_sentences

_LABEL = r"(?:(?:sources?|refs?|references?|docs?|documents?|papers?|s)\s*#?\s*)?"
_NUMBER_LIST = rf"{_LABEL}\d{{1,4}}(?:\s*(?:[,;\u2013\u2014-]|and|&)\s*{_LABEL}\d{{1,4}})*"
_MARKER = re.compile(rf"\[\s*({_NUMBER_LIST})\s*\]", re.IGNORECASE)
_MARKER_RUN = re.compile(rf"(?:\s*\[\s*{_NUMBER_LIST}\s*\])+", re.IGNORECASE)
_MAX_RANGE = 20  # "[1-3]" expands; "[1-300]" is not a real citation range
ABSTAIN_PHRASE = "The indexed papers do not answer this question."
_ABSTAIN_PATTERN = re.compile(
    r"(indexed|provided|given|these)\s+(papers|sources|abstracts)\s+(?:do|does)(?:\s+not|n['\u2019]t)\s+"
    r"(answer|address|cover|contain|mention|discuss)", re.IGNORECASE)


@dataclass(frozen=True)
class Marker:
    start: int
    end: int
    numbers: tuple[int, ...]


@dataclass(frozen=True)
class CheckConfig:
    """A cited sentence is supported when a cited abstract has a sentence at least ``min_cosine`` close
    to it, or contains at least ``min_overlap`` of its content words.

    Calibrated (``python -m benchmarks.calibrate support``) on 477 PubMedQA conclusion sentences:
    85% pass against their own abstract, 10% against the most similar other abstract
    (benchmarks/RESULTS.md, "Citation check").
    """

    min_cosine: float = 0.70
    min_overlap: float = 0.35
    min_claim_words: int = 4  # shorter uncited sentences ("In short:") are not claims


@dataclass(frozen=True)
class SentenceCheck:
    text: str  # the sentence as it reads in the checked answer
    cited: tuple[int, ...]  # final citation numbers
    supported: bool
    cosine: float  # best cosine with a sentence of a cited abstract (0 when nothing cited)
    overlap: float


@dataclass(frozen=True)
class CheckedText:
    """The repaired answer. ``order[i]`` is the 1-based source number cited as ``[i + 1]``."""

    text: str
    order: tuple[int, ...]
    supporting: dict[int, str]  # final number -> best supporting abstract sentence
    supported: dict[int, bool]  # final number -> every sentence citing it is supported
    sentences: tuple[SentenceCheck, ...]
    total: int  # citation numbers found (before repair)
    removed: int  # numbers dropped because no source has them

    @property
    def unsupported(self) -> int:
        return sum(1 for s in self.sentences if s.cited and not s.supported)

    @property
    def uncited(self) -> int:
        return sum(1 for s in self.sentences if not s.cited)


def marker_numbers(body: str) -> tuple[int, ...]:
    """``marker_numbers("1, 3-4")`` -> (1, 3, 4); labels such as "Source" are ignored."""
    numbers: list[int] = []
    for part in re.split(r"\s*(?:[,;&]|\band\b)\s*", body.strip(), flags=re.IGNORECASE):
        bounds = [int(x) for x in re.findall(r"\d+", part)]
        if len(bounds) == 2 and 0 < bounds[1] - bounds[0] <= _MAX_RANGE:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return tuple(dict.fromkeys(numbers))


def parse_markers(text: str) -> list[Marker]:
    """Each run of adjacent markers (``[1][2]`` is one run) with its numbers in order, deduplicated."""
    found = []
    for run in _MARKER_RUN.finditer(text):
        numbers = tuple(dict.fromkeys(n for m in _MARKER.finditer(run.group()) for n in marker_numbers(m.group(1))))
        start = run.start() + (len(run.group()) - len(run.group().lstrip()))
        found.append(Marker(start, run.end(), numbers))
    return found


def strip_markers(text: str) -> str:
    """``text`` without any citation markers (for history and for checking the claim itself)."""
    return re.sub(r"\s+([.,;:!?])", r"\1", _MARKER_RUN.sub("", text)).strip()


def is_abstention(text: str) -> bool:
    """Whether a model answer says the sources do not answer the question."""
    return bool(_ABSTAIN_PATTERN.search(text or ""))


def renumber(text: str, n_sources: int) -> tuple[str, tuple[int, ...], int, int]:
    """Drop numbers outside 1..n_sources, renumber the rest by first citation.

    Returns (text, order, total numbers, removed numbers).
    """
    markers = parse_markers(text)
    order: list[int] = []
    total = removed = 0
    for marker in markers:
        total += len(marker.numbers)
        for n in marker.numbers:
            if not 1 <= n <= n_sources:
                removed += 1
            elif n not in order:
                order.append(n)
    new_number = {old: i + 1 for i, old in enumerate(order)}
    out, last = [], 0
    for marker in markers:
        before = text[last:marker.start].rstrip(" ")
        kept = sorted(new_number[n] for n in marker.numbers if n in new_number)
        label = " [" + ", ".join(map(str, kept)) + "]" if kept else ""
        if label and before[-1:] in ".!?" and before[-2:-1].isalnum():
            before, label = before[:-1], label + before[-1]  # "claim. [1]" reads "claim [1]."
        out.append(before + label)
        last = marker.end
    out.append(text[last:])
    repaired = "".join(out)
    repaired = re.sub(r"(^|\n) +", r"\1", repaired)  # a marker removed at a line start leaves no indent
    return repaired, tuple(order), total, removed


def cited_sentences(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """(sentence, numbers it cites) per sentence; markers opening a sentence belong to the one before."""
    pieces: list[tuple[str, tuple[int, ...]]] = []
    for line in text.splitlines():
        for sentence in split_sentences(line):
            leading = re.match(r"^(?:\s*\[[^\]]*\])+", sentence)
            if leading and pieces and parse_markers(leading.group()):
                prev_text, prev_nums = pieces[-1]
                extra = parse_markers(leading.group())[0].numbers
                pieces[-1] = (prev_text + " " + leading.group().strip(), tuple(dict.fromkeys(prev_nums + extra)))
                sentence = sentence[leading.end():].strip()
                if not sentence:
                    continue
            numbers = tuple(dict.fromkeys(n for m in parse_markers(sentence) for n in m.numbers))
            pieces.append((sentence, numbers))
    return pieces


def check_citations(text: str, abstracts: Sequence[str], vectors: Callable[[list[str]], np.ndarray] | None,
                    config: CheckConfig = CheckConfig()) -> CheckedText:
    """Repair the markers of ``text`` (sources numbered 1..len(abstracts)) and check each cited sentence.

    ``vectors`` embeds sentences to unit vectors (chat.sentences.SentenceVectors); without it
    only word overlap decides support.
    """
    repaired, order, total, removed = renumber(text, len(abstracts))
    abstract_sentences = [split_sentences(abstracts[old - 1]) or [abstracts[old - 1]] for old in order]
    checks: list[SentenceCheck] = []
    best: dict[int, tuple[float, str]] = {}  # final number -> (best cosine, sentence) over its claims
    failed: set[int] = set()  # final numbers cited by at least one sentence they do not support
    for sentence, numbers in cited_sentences(repaired):
        claim = strip_markers(sentence)
        if not numbers:
            if _is_claim(claim, config):
                checks.append(SentenceCheck(sentence, (), False, 0.0, 0.0))
            continue
        matches = {n: _best_match(claim, abstract_sentences[n - 1], vectors) for n in numbers}
        passed = {n for n, (cos, ov, _) in matches.items() if cos >= config.min_cosine or ov >= config.min_overlap}
        failed.update(set(numbers) - passed)
        for n, (cos, _, support) in matches.items():
            if n not in best or cos > best[n][0]:
                best[n] = (cos, support)
        top = max(matches.values(), key=lambda m: (m[0], m[1]))
        checks.append(SentenceCheck(sentence, numbers, bool(passed), round(top[0], 4), round(top[1], 4)))
    numbers = range(1, len(order) + 1)
    supporting = {n: best[n][1] if n in best else abstract_sentences[n - 1][0] for n in numbers}
    supported = {n: n in best and n not in failed for n in numbers}
    return CheckedText(repaired, order, supporting, supported, tuple(checks), total, removed)


def _is_claim(sentence: str, config: CheckConfig) -> bool:
    return len(content_words(sentence)) >= config.min_claim_words and not is_abstention(sentence)


def _best_match(claim: str, sentences: list[str], vectors) -> tuple[float, float, str]:
    """(best cosine, overlap with that sentence or the whole abstract, the best sentence)."""
    whole = " ".join(sentences)
    if vectors is None or not claim:
        scores = [overlap(claim, s) for s in sentences]
        i = int(np.argmax(scores))
        return 0.0, overlap(claim, whole), sentences[i]
    matrix = vectors([claim] + sentences)
    cosines = matrix[1:] @ matrix[0]
    i = int(np.argmax(cosines))
    return float(cosines[i]), overlap(claim, whole), sentences[i]
