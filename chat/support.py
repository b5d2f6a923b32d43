"""Does a source support a claim? Meaning and words, then the contradictions that similarity misses.

A claim (one answer sentence, markers stripped) is compared with a source (its abstract
split into sentences, plus its title). It is *supported* when it is close in meaning to a
source sentence (MiniLM cosine) or its content words are mostly in the source, and none of
these contradictions holds:

- a **number** in the claim that the source never states ("12 GB" against "48GB");
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

from chat.sentences import STOPWORDS, content_words
from chat.text import stem

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
_NUMBER_WORDS = {"single": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                 "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twice": "2",
                 "double": "2"}
_NUMBER = re.compile(r"(?<![A-Za-z])\d+(?:[.,]\d+)*")
_WELL_FORMED = re.compile(r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?")  # "1,000" and "99.3"; "1,2" is a list
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|nor|neither|none|unable|fails?\s+to|failed\s+to|lacks?|lacking|"
                       r"rather\s+than|instead\s+of)\b|n't\b",
                       re.IGNORECASE)
_WITHOUT = re.compile(r"\bwithout\b", re.IGNORECASE)
_NOT_NEGATION = re.compile(r"\bnot\s+(?:only|just|merely|necessarily\s+only)\b|\bwhether\s+or\s+not\b|"
                           r"\bno\s+(?:longer|less|more|matter)\b|\bif\s+not\b", re.IGNORECASE)
# Two directions each: a claim using one side against a source sentence using only the other contradicts it.
_ANTONYMS = (
    ({"increas", "higher", "rais", "grow", "boost", "more", "larger", "bigger", "greater", "amplifi"},
     {"decreas", "reduc", "lower", "less", "fewer", "drop", "declin", "smaller", "shrink", "diminish"}),
    ({"improv", "better", "outperform", "superior", "enhanc", "benefit", "help"},
     {"degrad", "wors", "underperform", "inferior", "hurt", "harm", "impair"}),
    ({"faster", "speed", "acceler"}, {"slower", "slow", "delai"}),
    ({"effect", "success"}, {"ineffect", "unsuccess"}),
)
_NAME = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*")
_UNIT_NUMBER = re.compile(r"^\d+(?:\.\d+)?[A-Za-z]{0,3}$")  # "65B", "48GB", "4bit" are numbers, not names
_PLAIN_CAPITALISED = re.compile(r"^[A-Z][a-z]+$")


def judge(claim: str, sentences: Sequence[str], vectors: Vectors | None, config: SupportConfig = SupportConfig(),
          title: str = "") -> Support:
    """Whether ``sentences`` (one source, in order) support ``claim``; see the module docstring."""
    return judge_many([claim], [(list(sentences), title)], vectors, config)[0][0]


def judge_many(claims: Sequence[str], sources: Sequence[tuple[list[str], str]], vectors: Vectors | None,
               config: SupportConfig = SupportConfig()) -> list[list[Support]]:
    """``result[i][j]``: how source ``j`` (its sentences and title) supports claim ``i``; one embedding pass."""
    windows = [_windows(sents) for sents, _ in sources]
    cosines = _cosines(list(claims), windows, vectors)
    out = []
    for i, claim in enumerate(claims):
        row = []
        for j, (sents, title) in enumerate(sources):
            row.append(_support(claim, sents, title, windows[j], cosines[i][j], config))
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
             config: SupportConfig) -> Support:
    if not sentences:
        return Support(False, 0.0, 0.0, "", ("empty source",))
    whole = f"{title} {' '.join(sentences)}"
    overlap = _overlap(claim, whole)
    words = np.array([_overlap(claim, w) for w in windows])
    cosine = float(cosines.max()) if len(cosines) else 0.0
    aligned = windows[int(np.argmax(cosines + config.align_words * words))]
    sentence = aligned if _is_single(aligned, sentences) else _best_single(claim, aligned, sentences)
    problems = contradictions(claim, aligned, whole, config)
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


def _overlap(claim: str, text: str) -> float:
    wanted = set(content_words(_dehyphen(claim)))
    if not wanted:
        return 0.0
    return len(wanted & set(content_words(_dehyphen(text)))) / len(wanted)


def _dehyphen(text: str) -> str:
    """'pre-trained' and 'pretrained' are one word; 'fine-tuning' and 'finetuning' too."""
    return re.sub(r"(?<=[a-z])-(?=[a-z])", "", text)


def contradictions(claim: str, aligned: str, source: str, config: SupportConfig = SupportConfig()) -> tuple[str, ...]:
    """Readable problems of ``claim`` against the ``aligned`` source sentence and the whole ``source`` text."""
    found: list[str] = []
    if config.check_numbers:
        have = numbers(source)
        found += [f"number {n} not in source" for n in numbers(claim) if not _number_in(n, have)]
    if config.check_names:
        found += [f"name {n} not in source" for n in names(claim) if not mentions(source, n)]
    if config.check_negation and (problem := _negation_problem(claim, aligned, config.without_negates)):
        found.append(problem)
    if config.check_antonyms and (swap := _antonym_swap(claim, aligned)):
        found.append(swap)
    return tuple(found)


def numbers(text: str) -> list[str]:
    """Numbers a text states, normalised: ``numbers("1,000 runs, 99.3% on two GPUs")`` -> ['1000', '99.3', '2']."""
    found = [m.group().replace(",", "") for m in _NUMBER.finditer(text) if _WELL_FORMED.fullmatch(m.group())]
    found += [_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS]
    return list(dict.fromkeys(f.rstrip(".") for f in found))


def _number_in(number: str, have: list[str]) -> bool:
    if number in have:
        return True
    # "about 99%" for 99.3%: a claim may round a number the source states more precisely.
    decimals = len(number.split(".")[1]) if "." in number else 0
    try:
        value = float(number)
        return any("." in h and round(float(h), decimals) == value for h in have)
    except ValueError:
        return False


def names(claim: str) -> list[str]:
    """Names the claim uses: acronyms and mixed-case or digit-bearing words, and capitalised words past the start.

    >>> names("QLoRA beats Guanaco and GPT-4 on the Vicuna benchmark; The model uses 4-bit NF4 on 48GB.")
    ['QLoRA', 'Guanaco', 'GPT-4', 'Vicuna', 'NF4']
    """
    out = []
    for match in _NAME.finditer(claim):
        token = match.group()
        token = _drop_word_parts(token)
        if _UNIT_NUMBER.match(token) or len(token) < 2:
            continue
        upper = sum(c.isupper() for c in token)
        digit = any(c.isdigit() for c in token)
        start = match.start() == 0 or claim[:match.start()].rstrip()[-1:] in ".:;!?\"'(["
        if upper >= 2 or (digit and token[0].isalpha()) or (not start and _PLAIN_CAPITALISED.match(token)
                                                               and token.lower() not in STOPWORDS):
            out.append(token)
    return list(dict.fromkeys(out))


def _drop_word_parts(token: str) -> str:
    """'Slc23a1-deficient' -> 'Slc23a1', 'GPT-4-based' -> 'GPT-4': lower-case words joined to a name are not it."""
    parts = token.split("-")
    while len(parts) > 1 and parts[-1].isalpha() and parts[-1].islower():
        parts.pop()
    while len(parts) > 1 and parts[0].isalpha() and parts[0].islower():
        parts.pop(0)
    return "-".join(parts)


def mentions(source: str, name: str) -> bool:
    """Whether ``source`` names ``name``: spelling, hyphens and case aside, plural aside, or as an acronym's words."""
    squashed = re.sub(r"[^a-z0-9]", "", source.lower())
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    if not key or key in squashed or (key.endswith("s") and key[:-1] in squashed):
        return True
    letters = name.rstrip("s") if name.isupper() or name[:-1].isupper() else ""
    return bool(letters) and letters.isalpha() and _spelled_out(letters.lower(), source)


def _spelled_out(acronym: str, source: str) -> bool:
    """'LLM' in 'large language models': consecutive words (stop words skipped) with those initials."""
    initials = "".join(w[0] for w in re.findall(r"[a-z0-9]+", source.lower()) if w not in STOPWORDS)
    return acronym in initials


def negated(text: str, without: bool = True) -> bool:
    """Whether ``text`` negates anything: ``negated("It does not help.")`` -> True."""
    return bool(negation_scope(text, without)) or bool(_NEGATION.search(_NOT_NEGATION.sub(" ", text)))


def negation_scope(text: str, without: bool = True, width: int = 3) -> set[str]:
    """What a text negates: the first ``width`` content words after each negation (stemmed).

    >>> sorted(negation_scope("It runs without additional learned weights, not only on GPUs."))
    ['addit', 'learn', 'weight']
    """
    cleaned = _NOT_NEGATION.sub(" ", text)
    found: set[str] = set()
    cues = [*_NEGATION.finditer(cleaned), *(_WITHOUT.finditer(cleaned) if without else ())]
    for match in cues:
        clause = re.split(r"[.;:!?]\s", cleaned[match.end():match.end() + 120] + " ", maxsplit=1)[0]
        found.update(content_words(clause)[:width])  # a negation reaches no further than its clause
    return found


def _negation_problem(claim: str, aligned: str, without: bool) -> str:
    """A negation one side makes about words the other states plainly ("cannot finetune" / "finetunes")."""
    mine, theirs = negation_scope(claim, without), negation_scope(aligned, without)
    if mine & theirs:
        return ""  # both negate the same thing
    if theirs & set(content_words(claim)) and not mine:
        return "source is negated, claim is not"
    if mine & set(content_words(aligned)):
        return "negation differs from the source"
    return ""


def _antonym_swap(claim: str, aligned: str) -> str:
    mine, theirs = _stems(claim), _stems(aligned)
    for side_a, side_b in _ANTONYMS:
        for ours, other in ((side_a, side_b), (side_b, side_a)):
            used = {s for s in mine if any(s.startswith(p) for p in ours)}
            opposite = {s for s in theirs if any(s.startswith(p) for p in other)}
            same = {s for s in theirs if any(s.startswith(p) for p in ours)}
            if used and opposite and not same:
                return f"'{sorted(used)[0]}' where the source says '{sorted(opposite)[0]}'"
    return ""


def _stems(text: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[a-z]+", text.lower())}
