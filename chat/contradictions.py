"""Contradictions that similarity misses: numbers (missing or misplaced, chat/quantities.py), names, negation
and antonyms a claim and its source disagree on.

Each check compares a claim (an answer sentence) with the source sentence it matches and the
whole source text; ``contradictions`` returns the problems found, readable, for chat/support.py.

>>> contradictions("QLoRA cannot finetune 65B models on one 24GB GPU.", "QLoRA finetunes 65B models on one 48GB GPU.",
...                "QLoRA finetunes 65B models on one 48GB GPU.")
('number 24 not in source', 'negation differs from the source')
>>> numbers("1,000 runs, 99.3% on two GPUs")
['1000', '99.3', '2']
"""

from __future__ import annotations

import re

from chat.quantities import WELL_FORMED, misplaced, same_number
from chat.sentences import STOPWORDS, content_words
from chat.text import stem

_NUMBER_WORDS = {"single": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                 "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twice": "2",
                 "double": "2"}
_NUMBER = re.compile(r"(?<![A-Za-z])\d+(?:[.,]\d+)*")
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
    ({"most", "highest", "largest", "greatest", "maxim"}, {"least", "lowest", "smallest", "fewest", "minim"}),
    ({"enhanc", "promot", "stimul", "activ", "upregul", "induc"}, {"inhibit", "suppress", "block", "downregul", "repress",
                                                                 "attenu"}),
    ({"worsen", "exacerb", "aggrav"}, {"rescu", "allevi", "amelior", "restor"}),
    ({"sensitiv", "favor", "favour"}, {"insensitiv", "unfavor", "unfavour", "poor"}),
)
_NOT_COMPARATIVE = {"moreov", "mostli", "furthermor"}  # "Moreover, …" is no "more" and "mostly" no "most"
_QUALITY = r"(?:accura\w*|effective\w*|robust\w*|reliab\w*|perform\w*|precis\w*|faithful\w*)"
_BETTER = re.compile(rf"\b(?:more|higher|greater|improved)\s+{_QUALITY}", re.IGNORECASE)
_WORSE = re.compile(rf"\b(?:less|lower|reduced|poorer|worse)\s+{_QUALITY}", re.IGNORECASE)
_POSITIVE, _NEGATIVE = re.compile(r"\bpositive(?:ly)?\b", re.I), re.compile(r"\bnegative(?:ly)?\b", re.I)
_NAME = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*")
_UNIT_NUMBER = re.compile(r"^\d+(?:\.\d+)?[A-Za-z]{0,3}$")  # "65B", "48GB", "4bit" are numbers, not names
_PLAIN_CAPITALISED = re.compile(r"^[A-Z][a-z]+$")
_CONCEDING = re.compile(r"^\s*((?:while|although|though|even\s+though|whereas|unlike|despite)\b[^,]{8,}),\s*(.+)$",
                        re.IGNORECASE | re.DOTALL)




def contradictions(claim: str, aligned: str, source: str, *, check_numbers: bool = True, check_names: bool = True,
                   check_negation: bool = True, check_antonyms: bool = True, without_negates: bool = True,
                   check_quantities: bool = True, question: str = "") -> tuple[str, ...]:
    """Readable problems of ``claim`` against the ``aligned`` source sentence and the whole ``source`` text.

    A negation the claim repeats from the ``question`` ("models that see no text") is the question's
    premise, not the claim's: it is not held against the claim.
    """
    found: list[str] = []
    if check_numbers:
        have = numbers(source)
        found += [f"number {n} not in source" for n in numbers(claim) if not _number_in(n, have)]
    if check_quantities and not found:  # a number the source states, pinned on the wrong quantity
        found += misplaced(claim, source)
    if check_names:
        found += [f"name {n} not in source" for n in names(claim) if not mentions(source, n)]
    if check_negation and (problem := _negation_problem(claim, aligned, without_negates, question, source)):
        found.append(problem)
    if check_antonyms and (swap := _antonym_swap(claim, aligned)):
        found.append(swap)
    return tuple(found)


def numbers(text: str) -> list[str]:
    """Numbers a text states, normalised: ``numbers("1,000 runs, 99.3% on two GPUs")`` -> ['1000', '99.3', '2']."""
    found = [m.group().replace(",", "") for m in _NUMBER.finditer(text) if WELL_FORMED.fullmatch(m.group())]
    found += [_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS]
    return list(dict.fromkeys(f.rstrip(".") for f in found))


def _number_in(number: str, have: list[str]) -> bool:
    return any(same_number(number, h) for h in have)


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
    """Whether ``source`` names ``name``: spelling, hyphens and case aside, plural aside, or as an acronym's words.
    A short name must be a word of its own: "GANs" is not in "proposing a new".

    >>> mentions("We propose GPT-4 based GANs.", "GAN"), mentions("By proposing a new framework.", "GANs")
    (True, False)
    """
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    if not key or _named_in(key, source) or (key.endswith("s") and _named_in(key[:-1], source)):
        return True
    letters = name.rstrip("s") if name.isupper() or name[:-1].isupper() else ""
    return bool(letters) and letters.isalpha() and _spelled_out(letters.lower(), source)


def _named_in(key: str, source: str) -> bool:
    """``key`` (letters and digits only) inside the squashed ``source``; a short key only as a whole word or two."""
    if len(key) > 4:
        return key in re.sub(r"[^a-z0-9]", "", source.lower())
    unglued = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", source)  # scraped glue: "revealingGPT-3's"
    tokens = re.findall(r"[a-z0-9]+(?:[-.'’][a-z0-9]+)*", f"{source} {unglued}".lower())
    words = [re.sub(r"[^a-z0-9]", "", t) for t in tokens] + [p for t in tokens for p in re.split(r"[-'’]", t)]
    return any(key in (w, w[:-1] if w.endswith("s") else w, w + v) for w, v in zip(words, [*words[1:], ""]))


def _spelled_out(acronym: str, source: str) -> bool:
    """'LLM' in 'large language models': consecutive words (stop words skipped) with those initials."""
    initials = "".join(w[0] for w in re.findall(r"[a-z0-9]+", source.lower()) if w not in STOPWORDS)
    return acronym in initials


_YES = re.compile(r"\s*yes\b", re.IGNORECASE)


def negation_scopes(text: str, without: bool = True, width: int = 3) -> list[tuple[str, ...]]:
    """Each negation's scope on its own: up to ``width`` content words, ending at its clause or the next negation.

    >>> negation_scopes("No, E5 does not beat BM25 without labeled data.")
    [('e5',), ('beat', 'bm25'), ('label', 'data')]
    >>> negation_scopes("It runs without additional learned weights, not only on GPUs.")  # "not only" negates nothing
    [('addit', 'learn', 'weight')]
    """
    cleaned = _NOT_NEGATION.sub(" ", text)
    cues = sorted([*_NEGATION.finditer(cleaned), *(_WITHOUT.finditer(cleaned) if without else ())],
                  key=lambda m: m.start())
    scopes = []
    for i, match in enumerate(cues):
        end = cues[i + 1].start() if i + 1 < len(cues) else len(cleaned)  # one negation does not reach into the next
        clause = re.split(r"[.;:!?]\s", cleaned[match.end():min(end, match.end() + 120)] + " ", maxsplit=1)[0]
        if words := tuple(content_words(clause)[:width]):
            scopes.append(words)
    return scopes


def _negation_problem(claim: str, aligned: str, without: bool, question: str = "", source: str = "") -> str:
    """A negation one side makes about words the other states plainly ("cannot finetune" / "finetunes").

    Each negation is matched by meaning, not by count: a claim that shares the source's "without labeled
    data" but adds "does not beat BM25" has added a negation, and the shared one does not hide it. A
    negation the ``source`` makes elsewhere of the same thing ("pretraining without attention") is the
    source's, too.
    """
    # "Yes, X helps Y" answers the question whole: a negation anywhere in the source's clause ("has no significant
    # impact on the model's performance when the model is finetuned") bears on it, not only its first words
    width = 8 if _YES.match(claim) else 3
    mine, theirs = negation_scopes(claim, without), negation_scopes(aligned, without, width)
    premises = {scope[0] for scope in negation_scopes(question, without)}  # "…models that see no text?"
    claim_words, aligned_words = set(content_words(claim)), set(content_words(aligned))
    main = _main_clause(claim, claim_words, aligned)
    unmatched = [s for s in (negation_scopes(main, without, width) if main else theirs)
                 if not any(set(s) & set(m) for m in mine)]
    stated = {scope[0] for scope in negation_scopes(source, without)} if source else set()
    # what the claim negates on its own: not the question's premise, nor something the source negates elsewhere
    added = [m for m in mine if not any(set(s) & set(m) for s in theirs) and m[0] not in premises | stated]
    # One shared word ("sampling" / "without compromising the sample quality") is not the same statement.
    if any(len(set(s) & claim_words) >= min(2, len(s)) for s in unmatched):
        return "source is negated, claim is not"
    if any(len(set(s) & aligned_words) >= min(2, len(s)) for s in added):
        return "negation differs from the source"
    return ""


def _main_clause(claim: str, claim_words: set[str], aligned: str) -> str:
    """The main clause of ``aligned`` when it opens with a concession and ``claim`` is about the main clause; ''
    otherwise. "While existing detectors are not robust …, we propose RADAR, a robust detector": a claim naming
    what only the main clause names, or sharing more words with it, is not negated by what the concession grants.

    >>> _main_clause("Open models come close.", {"open", "model", "come", "close"},
    ...              "Although Codex is not open-source, open models come close.")
    'open models come close.'
    """
    found = _CONCEDING.match(aligned)
    if not found:
        return ""
    conceded, main = found.group(1), found.group(2)
    if any(mentions(main, n) and not mentions(conceded, n) for n in names(claim)):
        return main
    return main if len(claim_words & set(content_words(main))) > len(claim_words & set(content_words(conceded))) else ""


def _antonym_swap(claim: str, aligned: str) -> str:
    mine, theirs = _stems(_comparatives(claim)), _stems(_comparatives(aligned))
    for side_a, side_b in _ANTONYMS:
        for ours, other in ((side_a, side_b), (side_b, side_a)):
            used = {s for s in mine if any(s.startswith(p) for p in ours)}
            opposite = {s for s in theirs if any(s.startswith(p) for p in other)}
            same = {s for s in theirs if any(s.startswith(p) for p in ours)}
            if used and opposite and not same:
                return f"'{sorted(used)[0]}' where the source says '{sorted(opposite)[0]}'"
            paired = _paired_swap(claim, aligned, ours, other) if used and opposite else ""
            if paired:  # both directions in the source, but the opposite one on the claim's word: "less finetuning"
                return paired
    return ""


def _paired_swap(claim: str, aligned: str, ours: set[str], other: set[str]) -> str:
    """'more finetuning' in the claim where the source says 'less finetuning' (same next word, opposite side).

    >>> _paired_swap("It needs more finetuning.", "It requires less finetuning to converge higher.",
    ...              {"more", "higher"}, {"less", "lower"})
    "'more finetuning' where the source says 'less finetuning'"
    """
    def pairs(text: str, side: set[str]) -> dict[str, str]:
        words = re.findall(r"[a-z]+", _comparatives(text).lower())
        return {stem(b): f"{a} {b}" for a, b in zip(words, words[1:])
                if any(stem(a).startswith(p) for p in side) and b not in STOPWORDS}
    mine, theirs, agreed = pairs(claim, ours), pairs(aligned, other), pairs(aligned, ours)
    same = next((w for w in mine if w in theirs and w not in agreed), None)
    return f"'{mine[same]}' where the source says '{theirs[same]}'" if same else ""


def _comparatives(text: str) -> str:
    """'more accurate' -> 'better', 'less accurate' -> 'worse', 'positive' -> 'favourable' (stems cannot tell
    'positive' from 'position')."""
    text = _POSITIVE.sub(" favourable ", _NEGATIVE.sub(" unfavourable ", _BETTER.sub(" better ", text)))
    return _WORSE.sub(" worse ", text)


def _stems(text: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[a-z]+", text.lower())} - _NOT_COMPARATIVE
