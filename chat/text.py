"""Shared text helpers for keyword search: tokenising, stop words and a Porter-style stemmer.

The stemmer follows the five steps of M. F. Porter's 1980 algorithm ("An algorithm
for suffix stripping"), written from the published description; it conflates
inflected forms so that "treated", "treatment" and "treating" match each other.

>>> tokenize("The Mice were treated with IL-6 inhibitors.")
['mice', 'treat', 'il', '6', 'inhibitor']
>>> tokenize("running runs", stem=False, stop_words=frozenset())
['running', 'runs']
>>> [stem(w) for w in ("relational", "hopping", "generalizations", "ponies")]
['relat', 'hop', 'gener', 'poni']
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# A short general-English list: long lists hurt scientific queries ("not", "no", "more" carry meaning in claims
# but are too frequent to help ranking anyway, so BM25's idf handles them).
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be been before being below between both but by
can could did do does doing during each few for from further had has have having he her here hers herself him himself
his how i if in into is it its itself just me might my myself nor of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with would you your yours
yourself yourselves
""".split())

_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script: "β", "müller"


def words(text: str) -> list[str]:
    """Lower-cased words of letters and digits: ``words("TGF-β levels")`` -> ['tgf', 'β', 'levels']."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def term(word: str, stem: bool = True, stop_words: frozenset[str] = STOP_WORDS) -> str | None:
    """The index term for one word from :func:`words`, or None for a stop word."""
    if word in stop_words:
        return None
    return _stem_cached(word) if stem else word


def tokenize(text: str, stem: bool = True, stop_words: frozenset[str] = STOP_WORDS) -> list[str]:
    """Lower-cased alphanumeric words, stop words dropped, optionally stemmed."""
    found = (term(w, stem, stop_words) for w in words(text))
    return [t for t in found if t is not None]


@lru_cache(maxsize=500_000)
def _stem_cached(word: str) -> str:
    return stem(word)


# -- Porter stemmer --------------------------------------------------------------------------------------------
_STEP2 = (("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"),
          ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"), ("ization", "ize"),
          ("ation", "ate"), ("ator", "ate"), ("alism", "al"), ("iveness", "ive"), ("fulness", "ful"),
          ("ousness", "ous"), ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"), ("logi", "log"))
_STEP3 = (("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""),
          ("ness", ""))
_STEP2, _STEP3 = dict(_STEP2), dict(_STEP3)
_STEP4 = ("al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou", "ism",
          "ate", "iti", "ous", "ive", "ize")
_STEP4 = dict.fromkeys(_STEP4, "")


def _longest_suffix(word: str, rules: dict[str, str]) -> str | None:
    for n in range(min(len(word), 7), 0, -1):  # no rule's suffix is longer than 7 letters
        if word[-n:] in rules:
            return word[-n:]
    return None


def _is_consonant(word: str, i: int) -> bool:
    ch = word[i]
    if ch in "aeiou":
        return False
    if ch == "y":
        return i == 0 or not _is_consonant(word, i - 1)
    return True


def _measure(stem_: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in ``stem_``."""
    pattern = "".join("c" if _is_consonant(stem_, i) else "v" for i in range(len(stem_)))
    return len(re.findall(r"v+c+", pattern))


def _has_vowel(stem_: str) -> bool:
    return any(not _is_consonant(stem_, i) for i in range(len(stem_)))


def _double_consonant(word: str) -> bool:
    return len(word) > 1 and word[-1] == word[-2] and _is_consonant(word, len(word) - 1)


def _cvc(word: str) -> bool:
    """Ends consonant-vowel-consonant, the last not w, x or y (as in "hop", not "snow")."""
    n = len(word)
    return (n >= 3 and _is_consonant(word, n - 1) and not _is_consonant(word, n - 2)
            and _is_consonant(word, n - 3) and word[-1] not in "wxy")


def _step1(w: str) -> str:
    if w.endswith("sses") or w.endswith("ies"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    if w.endswith("eed"):
        return w[:-1] if _measure(w[:-3]) > 0 else w
    for suffix in ("ed", "ing"):
        if w.endswith(suffix) and _has_vowel(w[:-len(suffix)]):
            w = w[:-len(suffix)]
            if w.endswith(("at", "bl", "iz")):
                w += "e"
            elif _double_consonant(w) and w[-1] not in "lsz":
                w = w[:-1]
            elif _measure(w) == 1 and _cvc(w):
                w += "e"
            break
    if w.endswith("y") and _has_vowel(w[:-1]):
        w = w[:-1] + "i"
    return w


def _replace(w: str, rules: dict[str, str]) -> str:
    suffix = _longest_suffix(w, rules)  # only the longest matching suffix counts, even when its condition fails
    if suffix is None:
        return w
    base = w[:-len(suffix)]
    return base + rules[suffix] if _measure(base) > 0 else w


def _step4(w: str) -> str:
    suffix = _longest_suffix(w, _STEP4)
    if suffix is None:
        return w
    base = w[:-len(suffix)]
    if suffix == "ion" and not base.endswith(("s", "t")):
        return w
    return base if _measure(base) > 1 else w


def _step5(w: str) -> str:
    if w.endswith("e"):
        m = _measure(w[:-1])
        if m > 1 or (m == 1 and not _cvc(w[:-1])):
            w = w[:-1]
    if w.endswith("ll") and _measure(w) > 1:
        w = w[:-1]
    return w


def stem(word: str) -> str:
    """Porter stem of a lower-case word; words of one or two letters and numbers are kept."""
    if len(word) <= 2 or not word.isascii() or not word.isalpha():
        return word
    w = _step1(word)
    w = _replace(_replace(w, _STEP2), _STEP3)
    return _step5(_step4(w))
