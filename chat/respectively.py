"""Numbers a source gives "respectively": each belongs to one of the things it lists, in order.

"ChatGPT and GPT-4 can identify 67% and 87% of their own mistakes, respectively" gives 67% to
ChatGPT alone. Every number of a claim can be in such a source while the claim pins one on the
wrong thing ("GPT-4 identifies 67% of its mistakes") or on both ("ChatGPT and GPT-4 identify 67%
…"), and a check that only asks whether the number occurs passes it. Here the source's named list
and its number list are paired in order; a claim that names one of the things and states another's
number, not its own, is flagged; so is one that names several and states one number of them, or writes a
number next to another thing than its own. A model size written before a name ("outperforms 175B GPT-3") is
that name's too: "The base model of FLAN has 175B parameters" gives it to FLAN.

>>> source = "Crucially, we find that ChatGPT and GPT-4 can identify 67% and 87% of their own mistakes, respectively."
>>> respective_numbers(source)
[('ChatGPT', '67'), ('GPT-4', '87')]
>>> swapped("GPT-4 identifies 67% of its own mistakes.", source)
("67 is the source's figure for ChatGPT, not GPT-4",)
>>> swapped("ChatGPT and GPT-4 identify 67% of their mistakes.", source)
("67 is the source's figure for ChatGPT alone",)
>>> swapped("GPT-4 identifies 87% of its mistakes, ChatGPT 67%.", source)
()
>>> swapped("ChatGPT identifies 87% of its mistakes, GPT-4 67%.", source)
("67 is the source's figure for ChatGPT, not GPT-4", "87 is the source's figure for GPT-4, not ChatGPT")
>>> swapped("FLAN is a 175B model.", "FLAN, a 137B model, beats zero-shot 175B GPT-3.")
("175 is the source's size of GPT-3, not FLAN",)
"""

from __future__ import annotations

import re

from chat.contradictions import mentions, names, numbers
from chat.quantities import same_number
from chat.sentences import split_sentences

_JOINER = r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|vs\.?|versus)\s+)"
_NUMBER = r"\d+(?:[.,]\d+)*(?:%|\s?(?!(?:and|or|vs)\b)[A-Za-z\u00d7]{1,3}\b)?"  # "8.87 mm", "67%", not "0.22 and"
_CLAUSE = re.compile(r"[,;]\s*|\s+(?:and|while|whereas|but)\s+")
_NUMBER_LIST = re.compile(rf"{_NUMBER}(?:{_JOINER}{_NUMBER})+")
_SIZE = r"(\d+(?:\.\d+)?)\s?(?:B|M|billion|million)(?![\w-])"  # "175B", "1.3 billion": a model's parameter count
_SIZE_BEFORE = re.compile(_SIZE + r"(?:[\s-]+param(?:eter)?s?)?[\s-]+$")  # "175B GPT-3", "6B-parameter GPT-J"
# A claim that compares ("FLAN beats the 175B model") may state the other model's size without naming it.
_COMPARING = re.compile(r"\b(?:than|outperform\w*|surpass\w*|beat\w*|versus|vs|compared|rival\w*|match\w*|prefer\w*)\b",
                        re.IGNORECASE)


def respective_numbers(sentence: str) -> list[tuple[str, str]]:
    """(thing, number) pairs of a sentence that says "respectively", in order; [] when unsure: no list of as many
    names as numbers, or statistics ("92% +/- 3% and 93% +/- 3%") whose numbers are not one list."""
    if "respectively" not in sentence.lower() or re.search(r"\+/-|±", sentence):
        return []
    lists = [(m.start(), numbers(m.group())) for m in _NUMBER_LIST.finditer(sentence)]
    at, values = max(lists, key=lambda item: len(item[1]), default=(0, []))
    things = _named_list(sentence, len(values), at) if len(values) >= 2 else []
    return list(zip(things, values)) if len(things) == len(values) else []


def _named_list(sentence: str, size: int, near: int = 0) -> list[str]:
    """The run of exactly ``size`` names the sentence coordinates ("ChatGPT and GPT-4", "A, B, and C") nearest to
    position ``near``; [] for none. A run inside a longer list ("Africa, Asia" of "Africa, Asia, and Europe") is none."""
    found = names(sentence)
    runs = []
    for start in range(len(found) - size + 1):
        run = found[start:start + size]
        match = re.search(_JOINER.join(re.escape(n) for n in run), sentence)
        longer = [found[start - 1:start + size]] if start else []
        longer += [found[start:start + size + 1]] if start + size < len(found) else []
        if match and not any(re.search(_JOINER.join(re.escape(n) for n in more), sentence) for more in longer):
            runs.append((abs(match.start() - near), run))
    return min(runs, key=lambda item: item[0])[1] if runs else []


def swapped(claim: str, source: str) -> tuple[str, ...]:
    """Problems of ``claim`` with the numbers ``source`` gives respectively (see the module doc)."""
    if "respectively" in claim.lower():
        return ()  # the claim keeps the source's order; the plain number check reads it
    said = numbers(claim)
    problems: list[str] = []
    for sentence in split_sentences(source) or [source]:
        pairs = respective_numbers(sentence)
        named = [(thing, value) for thing, value in pairs if mentions(claim, thing)]
        stated = [(thing, value) for thing, value in pairs if any(same_number(n, value) for n in said)]
        if len(named) == 1 and stated and all(thing != named[0][0] for thing, _ in stated):
            problems += [f"{value} is the source's figure for {thing}, not {named[0][0]}" for thing, value in stated]
        elif len(named) >= 2 and len(stated) == 1 and _named_list(claim, len(named)):  # "A and B identify 67%"
            problems.append(f"{stated[0][1]} is the source's figure for {stated[0][0]} alone")
        elif len(named) >= 2:  # "65% with A and 25% with B": each number goes with the thing nearest to it
            things = [thing for thing, _ in named]
            problems += [f"{value} is the source's figure for {thing}, not {near}" for thing, value in stated
                         if (near := _nearest(claim, value, things)) not in (None, thing)]
    return tuple(problems) + _size_of_another(claim, source, said)


def sizes(text: str) -> list[tuple[str, str]]:
    """(name, size) pairs, in order, where a model size stands right before a name.

    >>> sizes("Outputs from the 1.3B parameter InstructGPT model are preferred to those of the 175B GPT-3.")
    [('InstructGPT', '1.3'), ('GPT-3', '175')]
    """
    found = []
    for name in dict.fromkeys(names(text)):
        for match in re.finditer(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
            size = _SIZE_BEFORE.search(text[max(0, match.start() - 40):match.start()])
            if size:
                found.append((match.start(), name, size.group(1)))
    return [(name, size) for _, name, size in sorted(found)]


def _size_of_another(claim: str, source: str, said: list[str]) -> tuple[str, ...]:
    """A size the claim states that the source gives only to models the claim does not name, while the claim
    names another: the smaller model's paper reports the baseline's size, and the claim gives it to the method."""
    claimed = names(claim)
    if not claimed or _COMPARING.search(claim):
        return ()
    pairs = sizes(source)
    problems = []
    for value in said:
        owners = [name for name, size in pairs if same_number(size, value)]
        written = [m for m in re.finditer(_SIZE, source) if same_number(m.group(1), value)]
        if owners and len(written) == len(owners) and not any(mentions(claim, o) for o in owners):
            problems.append(f"{value} is the source's size of {owners[0]}, not {claimed[0]}")
    return tuple(problems)


def _nearest(claim: str, value: str, things: list[str]) -> str | None:
    """Of ``things``, the one in the same clause of ``claim`` as ``value``; None when it cannot tell (no clause, or
    one with two of them, or "A and B identify 67% and 87%": the claim's own list reads respectively).

    >>> _nearest("It wins by 65% with GPT-3.5 and by 25% with Llama.", "25", ["GPT-3.5", "Llama"])
    'Llama'
    """
    if _named_list(claim, len(things)):
        return None
    clauses = [c for c in _CLAUSE.split(claim) if any(same_number(n, value) for n in numbers(_unnamed(c, things)))]
    inside = [t for t in things if len(clauses) == 1 and re.search(re.escape(t), clauses[0], re.IGNORECASE)]
    return inside[0] if len(inside) == 1 else None


def _unnamed(text: str, things: list[str]) -> str:
    """``text`` without the things' names, whose digits ("GPT-4") are no numbers stated."""
    for thing in things:
        text = re.sub(re.escape(thing), " ", text, flags=re.IGNORECASE)
    return text
