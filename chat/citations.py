"""Citation markers: parsed in every form a model writes, renumbered, placed — never trusted.

Markers look like ``[1]``, ``[1, 3]``, ``[1-3]``, ``[1][2]``, ``[ 2 ]`` or ``[Source 2]``.
Which source a sentence cites is decided by code (chat/attribute.py); this module reads
the markers a text has and writes them back in one style, before the sentence's full stop.

>>> parse_markers("A [1, 3]. B [2-4][6]. C [ 2 ] [Source 5].")[0].numbers
(1, 3)
>>> [m.numbers for m in parse_markers("B [2-4][6] and [ 2 ] [Source 5].")]
[(2, 3, 4, 6), (2, 5)]
>>> renumber("QLoRA finetunes 65B models on one GPU [2, 7]. LoRA adds adapters [1].", n_sources=3)
('QLoRA finetunes 65B models on one GPU [1]. LoRA adds adapters [2].', (2, 1), 3, 1)
>>> cite("It works.", [2, 1])
'It works [1, 2].'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from chat.sentences import split_sentences

_LABEL = r"(?:(?:sources?|refs?|references?|docs?|documents?|papers?|s)\s*#?\s*)?"
_NUMBER_LIST = rf"{_LABEL}\d{{1,4}}(?:\s*(?:[,;\u2013\u2014-]|and|&)\s*{_LABEL}\d{{1,4}})*"
_MARKER = re.compile(rf"\[\s*({_NUMBER_LIST})\s*\]", re.IGNORECASE)
_MARKER_RUN = re.compile(rf"(?:\s*\[\s*{_NUMBER_LIST}\s*\])+", re.IGNORECASE)
_MAX_RANGE = 20  # "[1-3]" expands; "[1-300]" is not a real citation range
UNSUPPORTED_FLAG = "[unsupported]"  # follows a sentence no shown source supports (UI renders it as a badge)


@dataclass(frozen=True)
class Marker:
    start: int
    end: int
    numbers: tuple[int, ...]


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
    """``text`` without citation markers or flags (for history, and for checking the claim itself)."""
    text = _MARKER_RUN.sub("", text.replace(UNSUPPORTED_FLAG, ""))
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()


def cite(sentence: str, numbers: Sequence[int], flag: str = "") -> str:
    """``sentence`` (markers stripped) with ``[numbers]`` and ``flag`` placed before its closing punctuation."""
    body = sentence.rstrip()
    label = (" [" + ", ".join(map(str, sorted(set(numbers)))) + "]") if numbers else ""
    label += f" {flag}" if flag else ""
    if body[-1:] in ".!?" and body[-2:-1] not in ".!?":
        return f"{body[:-1].rstrip()}{label}{body[-1]}"
    return f"{body}{label}"


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
    return [(s, n) for line in cited_lines(text) for s, n in line]


def cited_lines(text: str) -> list[list[tuple[str, tuple[int, ...]]]]:
    """:func:`cited_sentences` per line of ``text`` (an empty list for an empty line), so layout survives."""
    lines: list[list[tuple[str, tuple[int, ...]]]] = []
    for line in text.splitlines():
        pieces: list[tuple[str, tuple[int, ...]]] = []
        for sentence in split_sentences(line):
            leading = re.match(r"^(?:\s*\[[^\]]*\])+", sentence)
            target = pieces or (lines[-1] if lines and lines[-1] else None)
            if leading and target is not None and parse_markers(leading.group()):
                prev_text, prev_nums = target[-1]
                extra = parse_markers(leading.group())[0].numbers
                target[-1] = (prev_text + " " + leading.group().strip(), tuple(dict.fromkeys(prev_nums + extra)))
                sentence = sentence[leading.end():].strip()
                if not sentence:
                    continue
            numbers = tuple(dict.fromkeys(n for m in parse_markers(sentence) for n in m.numbers))
            pieces.append((sentence, numbers))
        lines.append(pieces)
    return lines


def clauses(sentence: str) -> list[tuple[str, tuple[int, ...]]]:
    """A sentence cut after each marker run that text follows: each clause with the numbers it cites.

    >>> clauses("QLoRA uses NF4 [1], while LLM.int8() uses outlier features [2].")
    [('QLoRA uses NF4 [1]', (1,)), (', while LLM.int8() uses outlier features [2].', (2,))]
    """
    out, last = [], 0
    for marker in parse_markers(sentence):
        rest = sentence[marker.end:]
        if re.search(r"[A-Za-z0-9]", rest):
            out.append((sentence[last:marker.end], marker.numbers))
            last = marker.end
    tail = sentence[last:]
    out.append((tail, tuple(dict.fromkeys(n for m in parse_markers(tail) for n in m.numbers))))
    return out
