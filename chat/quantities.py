"""A number the source states, said of the wrong quantity: which words does each number go with?

A small model can take a number from the right sentence and pin it on the wrong quantity:
"Codex solves 70.2% of the problems with one sample" where the source gives 70.2% for 100
samples per problem; "the acceptance rate was 4.5 million" where 4.5 million suggestions were
made and the acceptance rate was 22%. Each number of the claim is read with its nearest content
word on either side (within its phrase) and, after "is/was/are/were", the subject it is stated
of; the source is read leniently (two words a side, lists and ranges sharing their words). A
claim number none of whose words the source says it of, while the source gives another number
of the same kind for one of them, is misplaced.

>>> source = ("Using repeated sampling, we solve 70.2% of our problems with 100 samples per problem. "
...           "CodeCompose has an acceptance rate of 22%. Over 15 days, 4.5 million suggestions were made.")
>>> misplaced("Codex solves 70.2% of the problems with one sample.", source)
("1 said of 'sample', which the source gives as 100",)
>>> misplaced("The acceptance rate was 4.5 million.", source)
("4.5M said of 'rate', which the source gives as 22%",)
>>> misplaced("With 100 samples per problem, 70.2% of problems are solved; 22% of suggestions are accepted.", source)
()
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

from chat.sentences import STOPWORDS, split_sentences
from chat.text import stem

_TOKEN = re.compile(r"[,;:()\[\]/-]|\d+(?:[.,]\d+)*[A-Za-z%\u00d7]{0,3}|[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")
_NUMERIC = re.compile(r"(\d+(?:[.,]\d+)*)([A-Za-z%\u00d7]{0,3})")
WELL_FORMED = re.compile(r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?")  # "1,000" and "99.3"; "1,2" is a list
_NUMBER_WORDS = {"one": "1", "single": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                 "seven": "7", "eight": "8", "nine": "9", "ten": "10", "twice": "2", "double": "2"}
# Words that belong to a number rather than to a quantity: scale, unit, comparison.
_NOT_QUANTITY = frozenset("""
million millions billion billions thousand thousands hundred hundreds trillion percent percentage point points
time times fold up about around nearly almost roughly approximately over under than least most only just
total average respect respectively across among per after before during into onto upon towards
""".split())
# "The acceptance rate … was 4.5 million": the number is said of the clause's subject.
_COPULAS = frozenset("is was are were".split())
_CLAUSE_STARTS = frozenset([*",;:()", "when", "where", "which", "that", "while", "whereas", "if", "because"])
# Between two numbers, these make one list or range of them.
_LINKS = frozenset([",", "and", "or", "to", "of", "the", "out", "vs", "versus", "-", "/"])
# Where a phrase ends: a number's words do not reach across these.
_BARRIERS = frozenset([*",;:()[]", "and", "or", "but", "while", "whereas", "versus", "vs", "compared", "respectively",
                       "from", "to", "between"])
# A number's kind: 47% of controls and 116 controls are not two values of one quantity.
_UNITS = {"%": "%", "percent": "%", "x": "x", "\u00d7": "x", "times": "x", "fold": "x", "k": "k", "thousand": "k",
          "m": "m", "million": "m", "b": "b", "billion": "b", "t": "t", "trillion": "t"}
# Marks a number spelled out ("two patients"): it can confirm a claim's number, never contradict one.
_SPELLED = "~"
# "one of the", "one or two": 'one' that does not count anything.
_COUNTING_NEXT = frozenset("of or and another such that which hand".split())


@dataclass(frozen=True)
class QuantityConfig:
    """How far a number's words reach; calibrated with ``python -m benchmarks.support_check``."""

    reach: int = 3  # the claim: a number's quantity is its nearest content word on each side, this near
    source_reach: int = 4  # the source is read leniently: its two nearest words on each side, this near
    source_words: int = 2


def misplaced(claim: str, source: str, config: QuantityConfig = QuantityConfig()) -> tuple[str, ...]:
    """Readable problems: a claim number none of whose neighbouring words the source says it of, while the
    source gives another number of the same kind (%, x, million, …) for one of them."""
    theirs = _source_reading(source, config)
    problems = []
    for number, words, listed, subject in _numbers_with_words(claim, config.reach, 1, lists=False):
        if listed:
            continue  # "4.8% versus 0.3% improvement": which number the word is said of is not clear
        given = set().union(*(theirs.get(stem(w.lower()), set()) for w in words))
        # 47% of controls is not 116 controls: a neighbour contradicts only with a number of the same kind...
        other = set() if any(_same(number, g) for g in given) else {g for g in given if _kind(g) == _kind(number)}
        stated = theirs.get(stem(subject.lower()), set()) if subject else set()
        if not any(_same(number, g) for g in stated):
            other |= stated  # ...but "the acceptance rate was 4.5 million" is not the source's 22%
        if other := sorted(g for g in other if not g.endswith(_SPELLED)):  # "two patients" rules nothing out
            said = [w for w in ([subject] if stated else []) + words  # the words only the other numbers go with
                    if theirs.get(stem(w.lower())) and theirs[stem(w.lower())] <= set(other)] or words
            problems.append(f"{_shown(number)} said of '{' '.join(dict.fromkeys(said))}', which the source gives "
                            f"as {', '.join(map(_shown, other))}")
    return tuple(dict.fromkeys(problems))


@functools.lru_cache(maxsize=256)
def _source_reading(source: str, config: QuantityConfig) -> dict[str, set[str]]:
    """Stemmed word -> the numbers the source says it of; read once per source, however many claims it checks."""
    theirs: dict[str, set[str]] = {}
    for number, words, _, subject in _numbers_with_words(source, config.source_reach, config.source_words, lists=True):
        for word in [*words, subject] if subject else words:  # read as the claim is, and more
            theirs.setdefault(stem(word.lower()), set()).add(number)
    return theirs


def _numbers_with_words(text: str, reach: int, per_side: int, lists: bool
                        ) -> list[tuple[str, list[str], bool, str]]:
    """Each number of ``text`` with its nearest content words on either side, within its phrase. With
    ``lists``, numbers joined into a list or range ("2.7B, 13B and 52B parameters", "162 of 248 bones")
    share their words (read so, a source pins fewer words on one number only)."""
    out = []
    for sentence in split_sentences(text):
        tokens = _TOKEN.findall(sentence)
        values = [_value(t, tokens[i + 1:i + 2]) for i, t in enumerate(tokens)]
        i = 0
        while i < len(tokens):
            if not values[i]:
                i += 1
                continue
            group, last = [i], i  # the group runs on while only linking words stand between numbers
            while (after := _linked(tokens, values, last)) is not None:
                group.append(after)
                last = after
            spans = [(group[0], group[-1])] if lists else [(j, j) for j in group]  # shared words, or each its own
            for first, end in spans:
                words = _side(tokens, values, range(first - 1, max(first - reach, 0) - 1, -1), per_side)
                words += _side(tokens, values, range(end + 1, min(end + reach + 1, len(tokens))), per_side)
                subject = _subject(tokens, first)
                out += [(values[j], words, len(group) > 1, subject) for j in range(first, end + 1) if values[j]]
            i = last + 1
    return out


def _subject(tokens: list[str], at: int) -> str:
    """'The acceptance rate for X was 4.5 million' -> 'rate': the head of what a number is stated of.

    Only a copula right before the number (stop words aside) states it of a subject, and only a subject
    with no number of its own ("models with up to 137B parameters … are pre-trained on 1.56T words"). The
    head ends the subject's first run of content words ("the median overall survival of …")."""
    for i in range(at - 1, max(at - 4, -1), -1):
        word = tokens[i].lower()
        if word in _COPULAS:
            start = max((j for j in range(i) if tokens[j].lower() in _CLAUSE_STARTS), default=-1) + 1
            if any(_NUMERIC.fullmatch(t) for t in tokens[start:i]):
                return ""
            run = list(itertools.dropwhile(lambda t: not _is_content(t.lower()), tokens[start:i]))
            run = list(itertools.takewhile(lambda t: _is_content(t.lower()), run))
            return run[-1] if run else ""
        if word not in STOPWORDS and word not in _NOT_QUANTITY:
            return ""
    return ""


def _is_content(word: str) -> bool:
    return word.isalpha() and len(word) > 2 and word not in STOPWORDS and word not in _NOT_QUANTITY


def _linked(tokens: list[str], values: list[str], at: int) -> int | None:
    """Where the next number of a list or range starting after ``at`` is ("2.7B, 13B, and 52B"), or None."""
    for j in range(at + 1, min(at + 4, len(tokens))):
        if values[j]:
            return j if j > at + 1 else None
        if tokens[j].lower() not in _LINKS:
            return None
    return None


def _side(tokens: list[str], values: list[str], positions: range, wanted: int) -> list[str]:
    """Up to ``wanted`` content words at ``positions``, stopping at a phrase boundary or another number.

    A claim's side (one word wanted) is read strictly: a word right after another number is that
    number's unit ("21 weeks after 25 Gy"), and a past participle ("occurred") names no quantity."""
    strict, found = wanted == 1, []
    for i in positions:
        word = tokens[i].lower()
        if word in _BARRIERS or values[i] or _NUMERIC.fullmatch(tokens[i]) or len(found) == wanted:
            break
        if strict and (word.endswith("ed") or positions.step < 0 and i > 0 and values[i - 1]):
            break  # read no further than the source would
        if _is_content(word):
            found.append(tokens[i])
    return found


def _value(token: str, following: list[str]) -> str:
    """The number a token states ('48GB' -> '48', '1,000' -> '1000', 'single' -> '1'), or ''."""
    word = token.lower()
    if word in _NUMBER_WORDS:
        counting = bool(following) and following[0].isalpha() and (word != "one" or following[0].lower()
                                                                   not in _COUNTING_NEXT)
        return f"{_NUMBER_WORDS[word]}{_SPELLED}" if counting else ""
    match = _NUMERIC.fullmatch(token)
    if not match or not WELL_FORMED.fullmatch(match.group(1)):
        return ""
    unit = match.group(2).lower() or (following[0].lower() if following and following[0].lower() in _UNITS else "")
    return f"{match.group(1).replace(',', '')}{_UNITS.get(unit, unit)}"


def _shown(number: str) -> str:
    """'4.5m' -> '4.5M', '1~' -> '1'."""
    return _digits(number) + _unit(number).upper()


def _digits(number: str) -> str:
    return re.match(r"[\d.]*", number).group().rstrip(".")


def _unit(number: str) -> str:
    return number.lstrip("0123456789.").removesuffix(_SPELLED)


def _kind(number: str) -> tuple[str, bool]:
    """Its unit, and whether it has decimals: an odds ratio of 3.9 is not a sample of 133."""
    return _unit(number), "." in _digits(number)


def _same(number: str, given: str) -> bool:
    """The same value, the unit aside (see :func:`same_number`)."""
    return same_number(_digits(number), _digits(given))


def same_number(number: str, given: str) -> bool:
    """Whether ``number`` states ``given`` ('99' for '99.3': a claim may round what its source states more
    precisely); both plain digits: ``same_number("99", "99.3")`` -> True, ``same_number("99.1", "99.3")`` -> False."""
    if number == given:
        return True
    decimals = len(number.split(".")[1]) if "." in number else 0
    return "." in given and round(float(given), decimals) == float(number)
