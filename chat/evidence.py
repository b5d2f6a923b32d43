"""What a question asks about, and whether a paper mentions it: the word-level signals of the evidence gate.

A question's *units* are its content words, stemmed (``chat.text``), a hyphenated compound
counting as one ("pre-trained", "chain-of-thought"); stop words, verbs and words about the
question's form ("how many", "what fraction") are left out, since they say what is asked and
not about what. A unit is found in a paper when its stem, its compound joined or split, or
(for five letters or more) its letters appear there, so hyphenation, case, inflection and the
glued words of scraped pages ("proposeFlashAttention") do not decide. Units weigh by how rare
they are in the index (BM25's idf): "model" counts little, "warmup" a lot.

>>> coverage(units("How are pre-trained models quantized?"), "We quantize pretrained models.", {})
1.0
>>> name_focus(["FlashAttention"], [("", "We proposeFlashAttention, an IO-aware attention. FlashAttention is fast.")])
1.0
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence

from chat.sentences import STOPWORDS
from chat.subject import VERBS
from chat.text import stem

_COMPOUND = re.compile(r"[^\W_]+(?:[-\u2010\u2011\u2013/][^\W_]+)+")  # pre-trained, chain-of-thought, w4a4
_WORD = re.compile(r"[^\W_]+")
# "How big are the Paramanu models?" asks for a size: the adjective says what is asked, not about what
# (an abstract gives "13.29M to 367.5M parameters", never "big").
_HOW_ADJECTIVE = re.compile(r"\bhow\s+(?:big|large|small|long|short|fast|slow|often|well|close|far|good|high|low|old|"
                            r"deep|wide)\b")
# Words about the form of a question, not its topic ("what fraction", "how many", "what kind", "the idea behind").
FORM_WORDS = frozenset("fraction share percentage percent proportion number amount many much kind kinds type types "
                       "way ways part parts example examples idea ideas intuition purpose behind".split())
# "vitamin C", "hepatitis B", "kinase C": a capital letter after a word is part of the name, and a paper about
# vitamin D (which also has a stray "c" somewhere) is not about vitamin C. Joined to its word as a compound.
_LETTER_NAME = re.compile(r"\b([A-Za-z]{3,})\s+([A-Z])\b(?![-\w])")
# "GPS", "CNS", "SARS": an all-capital acronym's final S is not a plural, so "GPS" must not match the "GPs"
# (general practitioners) of an abstract. Such words stay unstemmed and in capitals, on both sides.
_ACRONYM_S = re.compile(r"\b[A-Z]{2,4}S\b")
_WORD_LETTER = re.compile(r"\b([a-z]{3,})[\s-]([a-z])\b")  # "vitamin c", "hepatitis-b" in lower-cased text


def _acronyms(text: str) -> set[str]:
    """The acronyms ending in S of ``text``, unless it is written in capitals throughout ("HOW ARE MODELS …")."""
    words = re.findall(r"[A-Za-z]{2,}", text)
    if sum(w.isupper() for w in words) * 2 > len(words):
        return set()
    return set(_ACRONYM_S.findall(text))
Unit = tuple[str, ...]
Rarity = Callable[[Sequence[str]], Mapping[str, float]]  # index terms -> inverse document frequency


def units(text: str) -> list[Unit]:
    """The question's content words as stems; a hyphenated compound is one unit of its parts.

    >>> units("Why are pre-trained LLMs so chatty? What share of them helps?")
    [('pre', 'train'), ('llm',), ('chatti',)]
    >>> units("How big are the Paramanu models?")
    [('paramanu',), ('model',)]
    >>> units("Does vitamin C help GPS users?")
    [('vitamin', 'c'), ('GPS',), ('user',)]
    """
    text = unicodedata.normalize("NFKC", text)
    acronyms = {a.lower() for a in _acronyms(text)}
    text = _LETTER_NAME.sub(lambda m: m.group(1) + "-" + m.group(2) if m.group(1).lower() not in STOPWORDS
                            else m.group(), text)
    text = _HOW_ADJECTIVE.sub("how", text.lower())
    found: list[Unit] = []
    spans = [(m.start(), m.end()) for m in _COMPOUND.finditer(text)]
    for m in _WORD.finditer(text):
        inside = next((s for s in spans if s[0] <= m.start() < s[1]), None)
        if inside is None:
            acronym = m.group() in acronyms and m.group() not in STOPWORDS
            word = m.group().upper() if acronym else _content_stem(m.group())
            if word:
                found.append((word,))
        elif m.start() == inside[0]:  # a compound keeps all its parts, verbs included ("pre-trained")
            parts = tuple(stem(w) for w in _WORD.findall(text[inside[0]:inside[1]]) if w not in STOPWORDS)
            if parts:
                found.append(parts)
    return list(dict.fromkeys(found))


def _content_stem(word: str) -> str:
    if word in STOPWORDS or word in FORM_WORDS or _is_verb(word) or (len(word) < 2 and not word.isdigit()):
        return ""
    return stem(word)


def _is_verb(word: str) -> bool:
    """A form of a listed verb ('improve', 'improves', 'improved'); nouns ('quantization') and gerunds
    ('finetuning') name topics and stay."""
    if word in VERBS or (word.endswith("ied") and word[:-3] + "y" in VERBS):
        return True
    return any(word.endswith(end) and word[:-len(end)] in VERBS for end in ("s", "es", "d", "ed"))


def key(unit: Unit) -> str:
    """The index term a unit is weighed by: its stem, or its compound joined."""
    return unit[0] if len(unit) == 1 else stem("".join(unit))


@functools.lru_cache(maxsize=64)  # the same top papers are read for every piece of a question, and by absent()
def _vocabulary(text: str) -> frozenset[str]:
    """Every stem of ``text``, plus each hyphenated compound and each word with its letter joined
    ('pre-trained' -> 'pretrain', 'vitamin D' -> 'vitamind'), plus its capital acronyms unstemmed ('GPS')."""
    lower = text.lower()
    vocab = {stem(w) for w in _WORD.findall(lower)} | _acronyms(text)
    vocab |= {stem(m.group(1)) + m.group(2) for m in _WORD_LETTER.finditer(lower)}
    return frozenset(vocab | {stem("".join(_WORD.findall(m.group()))) for m in _COMPOUND.finditer(lower)})


def _flat(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def _found(unit: Unit, vocab: frozenset[str], flat: str) -> bool:
    joined = "".join(unit)
    if joined.isupper():  # an acronym ending in S ("GPS"): as written, never as a plural
        return joined in vocab
    if len(unit) > 1 and len(unit[-1]) == 1 and unit[-1].isalpha():  # "vitamin C": the letter must follow its word
        return joined in vocab
    return stem(joined) in vocab or all(p in vocab for p in unit) or (len(joined) >= 5 and joined in flat)


def coverage(query_units: Sequence[Unit], text: str, weight: Mapping[str, float]) -> float:
    """Rarity-weighted share of ``query_units`` found in ``text`` (a paper's title and abstract)."""
    total = sum(weight.get(key(u), 1.0) for u in query_units)
    if not total:
        return 0.0
    text = unicodedata.normalize("NFKC", text)
    vocab, flat = _vocabulary(text), _flat(text)
    return sum(weight.get(key(u), 1.0) for u in query_units if _found(u, vocab, flat)) / total


def name_focus(query_names: Sequence[str], papers: Sequence[tuple[str, str]]) -> float:
    """Share of ``query_names`` that one of ``papers`` (title, abstract) is about: named in its title,
    twice in its abstract, or introduced by it ("On HumanEval, a new evaluation set we release");
    0.0 for none. A paper that mentions a method once, in passing, is not about it.

    >>> name_focus(["QLoRA", "LAMB"], [("QLoRA", "We finetune with LAMB."), ("Other", "QLoRA saves memory.")])
    0.5
    >>> name_focus(["HumanEval"], [("", "On HumanEval, a new evaluation set we release, it solves 28.8%.")])
    1.0
    """
    wanted = [(_flat(n[:-1] if n.endswith("s") and n[:-1].isupper() else n), n) for n in query_names]
    flats = [(_flat(title), _flat(abstract), abstract) for title, abstract in papers]
    about = [any(w in t or a.count(w) >= 2 or _introduces(raw, name) for t, a, raw in flats) for w, name in wanted if w]
    return sum(about) / len(about) if about else 0.0


def absent(query: str, query_names: Sequence[str], texts: Sequence[str]) -> float:
    """1.0 when the question names something ("Europe", "vitamin C", "LAMB") that none of ``texts``
    mentions at all, else 0.0: a paper on vaccine adoption in Thailand does not answer a question about
    Europe, nor one on vitamin D a question about vitamin C.

    >>> absent("Is vitamin C needed in Europe?", ["Europe"], ["Vitamin D intake in Europe."])
    1.0
    >>> absent("Is vitamin D needed in Europe?", ["Europe"], ["Vitamin D intake in Europe."])
    0.0
    """
    letters = [u for u in units(query) if len(u) > 1 and len(u[-1]) == 1 and u[-1].isalpha()]
    vocabs = [(_vocabulary(unicodedata.normalize("NFKC", t)), _flat(t)) for t in texts]
    wanted = [_flat(n[:-1] if n.endswith("s") and n[:-1].isupper() else n) for n in query_names]
    missing = [w for w in wanted if w and not any(w in flat for _, flat in vocabs)]
    missing += [u for u in letters if not any(_found(u, vocab, flat) for vocab, flat in vocabs)]
    return 1.0 if missing else 0.0


def _introduces(abstract: str, name: str) -> bool:
    """Whether ``abstract`` introduces ``name``: "we propose X", "called X", "X, a new/novel …"."""
    quoted = re.escape(name)
    return bool(re.search(rf"\b(?:introduc|present|propos|releas|develop|call|nam|dub|term)\w*\s+(?:\w+\s+){{0,3}}"
                          rf"{quoted}\b|\b{quoted},?\s+(?:a|an)\s+(?:new|novel)\b", abstract, re.IGNORECASE))


def idf_weights(document_frequency: Callable[[str], int], papers: int) -> Rarity:
    """A :data:`Rarity` from an index's document frequencies: BM25's idf, so a term in every paper weighs ~0."""
    def rarity(terms: Sequence[str]) -> dict[str, float]:
        return {t: math.log1p((papers - (df := document_frequency(t)) + 0.5) / (df + 0.5)) for t in terms}
    return rarity
