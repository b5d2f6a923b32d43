"""Sentence splitting, content words and word overlap: the text tools shared by the answer path.

Abstracts are split into sentences without breaking on abbreviations ("e.g.",
"et al.", "Fig. 2") or decimals ("3.5"); words are lower-cased, stop words
dropped and Porter-stemmed (``chat.text``), so "models" and "model" overlap.

>>> split_sentences("We use LoRA, e.g. on LLaMA. It saves 3.5 GB of memory! Done")
['We use LoRA, e.g. on LLaMA.', 'It saves 3.5 GB of memory!', 'Done']
>>> content_words("How do the models save memory?")
['model', 'save', 'memori']
>>> round(overlap("memory saving of models", "The model saves GPU memory."), 2)
1.0
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from chat.text import STOP_WORDS, tokenize
from ingest.labels import derive_label

_ABBREVIATIONS = {
    "e.g", "i.e", "et al", "al", "fig", "figs", "eq", "eqs", "vs", "cf", "approx", "no", "nos", "ref", "refs",
    "sec", "tab", "dr", "mr", "ms", "prof", "inc", "ltd", "resp", "etc", "viz", "ca", "st", "jr", "sr", "vol",
}
# A sentence ends at . ! or ? (optionally followed by closing quotes/brackets) before whitespace and
# a capital letter, digit, opening bracket or quote; the abbreviation check happens afterwards.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9(\[\"'\u201c])")
_HYPHENATED = re.compile(r"\b([A-Za-z]+)-([A-Za-z]+)\b")
# Words that carry no meaning in a question about papers, on top of the keyword index's stop words.
STOPWORDS = STOP_WORDS | frozenset("""
also may must shall one many much well via within without whether tell explain describe compare compared versus
vs let us please give know anything something thing things paper papers study studies work approach method methods
propose proposed present presents show shows use used using based new
""".split())


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` in order; whitespace folded, nothing dropped."""
    text = " ".join((text or "").split())
    if not text:
        return []
    pieces, start = [], 0
    for match in _BOUNDARY.finditer(text):
        candidate = text[start:match.start()].strip()
        if _ends_with_abbreviation(candidate):
            continue
        pieces.append(text[start:match.end()].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def _ends_with_abbreviation(sentence: str) -> bool:
    last = re.split(r"[\s\u2013\u2014/(]", sentence)[-1].rstrip(".!?\"')]").lstrip("([{\"'").lower()
    # Single capital letters ("J. Smith") are initials, not sentence ends.
    initial = len(last) == 1 and last.isalpha() and sentence[-2:-1].isupper() and sentence[-1] == "."
    return last in _ABBREVIATIONS or initial


def content_words(text: str) -> list[str]:
    """Porter-stemmed words that carry meaning (no stop words, no one-letter tokens), in order."""
    return [w for w in tokenize(text, stem=True, stop_words=STOPWORDS) if len(w) > 1]


def overlap(query: str, text: str) -> float:
    """Share of the query's distinct content words found in ``text`` (0 when the query has none). A hyphenated
    word matches its closed spelling either way: "few-shot" is in "fewshot", "pretrained" in "pre-trained".

    >>> overlap("few-shot exemplars", "the fewshot exemplar"), overlap("pretrained models", "pre-trained models")
    (1.0, 1.0)
    """
    wanted = set(content_words(query))
    if not wanted:
        return 0.0
    have = set(content_words(text)) | _closed(text)
    flat = re.sub(r"[\W_]+", "", text.lower())
    for parts in _HYPHENATED.findall(query):
        if "".join(parts).lower() in flat:  # the text writes the query's compound closed
            have |= set(content_words(" ".join(parts)))
    return len(wanted & have) / len(wanted)


def _closed(text: str) -> set[str]:
    """Content words of ``text``'s hyphenated compounds written closed ("pre-trained" -> "pretrain")."""
    return {w for parts in _HYPHENATED.findall(text) for w in content_words("".join(parts))}


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa or sb else 0.0


def display_title(title: str, abstract: str, paper_id: str = "", words_max: int = 12) -> str:
    """The title, or for an untitled paper the name derived from its abstract (``ingest.labels``: the
    method or model it introduces, else a short topic phrase), else the id.

    >>> display_title("", "We present QLoRA, an efficient finetuning approach.", "doc-1")
    'QLoRA'
    """
    return title.strip() or derive_label(abstract) or paper_id


def shorten(text: str, max_chars: int) -> str:
    """``text`` cut at a word boundary to at most ``max_chars`` characters, with an ellipsis when cut."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1].rsplit(" ", 1)[0] if " " in text[:max_chars + 1] else ""
    return cut.rstrip(" ,;:") + "\u2026"


class SentenceVectors:
    """Unit vectors of sentences from an embedder, cached by text (abstract sentences recur across turns).

    ``embedder`` is anything with ``embed(list[str]) -> np.ndarray`` of unit rows (models.embedder.Embedder).
    """

    def __init__(self, embedder, max_cached: int = 20000):
        self.embedder, self._cache, self._max = embedder, {}, max_cached

    def __call__(self, texts: list[str]):
        import numpy as np

        # "(SSMs) ." and "(SSMs)." are one sentence: a quoted sentence re-checked later hits the cache.
        texts = [re.sub(r"\s+([.,;:!?])", r"\1", " ".join(t.split())) for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing and len(self._cache) + len(missing) > self._max:
            self._cache.clear()  # a simple bound: recomputing is cheap next to a growing process
            missing = list(dict.fromkeys(texts))
        if missing:
            for text, vector in zip(missing, self.embedder.embed(missing)):
                self._cache[text] = vector
        if not texts:
            return np.zeros((0, getattr(self.embedder, "dim", 0)), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])
