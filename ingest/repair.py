"""Repair text scraped from web pages: words glued at link and markup boundaries, footnote marks.

Copied Hugging Face pages lose the spaces around links and italics, and arXiv's HTML puts
footnote numbers right against the text: "we proposeFlashAttention", "generating achain of
thought", "thatPINTOsignificantly", "and code222http://nlp.fast.ai", "available
athttps://github.com/…", "fewer than300 lines". This module puts the spaces back where a
known word meets a name, a URL or a number, or a function word meets a word ("thatinstruction",
"notalignedwith"), and drops footnote marks. A word is *known*
when it is a common function word or a whole word of the cl100k vocabulary (one token
with its leading space) of at least three letters, so names such as "mT5", "arXiv" or
"umT5" stay whole. Only the page formats use it: records from JSON, CSV or the arXiv API
are not scraped and are left as they are.

>>> repair_scraped("We proposeFlashAttention, an IO-aware algorithm, andFlashAttentionoutperforms baselines.")
'We propose FlashAttention, an IO-aware algorithm, and FlashAttention outperforms baselines.'
>>> repair_scraped("generating achain of thought with fewer than300 lines, see code222http://x.ai and athttps://g.io")
'generating a chain of thought with fewer than 300 lines, see code http://x.ai and at https://g.io'
>>> repair_scraped("It runs in the loop.LLM+P takes a plan. First,PINTO maps; in evaluation,WizardLM wins.")
'It runs in the loop. LLM+P takes a plan. First, PINTO maps; in evaluation, WizardLM wins.'
>>> repair_scraped("We show thatinstruction tuning helps models notalignedwith users ondatasets of all sizes.")
'We show that instruction tuning helps models not aligned with users on datasets of all sizes.'
>>> repair_scraped("Pretrained mT5 and umT5 on arXiv with LLaMA and GPT-4.")
'Pretrained mT5 and umT5 on arXiv with LLaMA and GPT-4.'
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from models.tokens import get_encoding

_FUNCTION_WORDS = frozenset("""a an the of to in on at by as is are be or and for with from that this these those we our
it its into via than then when where which while who whose can may will not also both each such""".split())
_URL_GLUE = re.compile(r"(?<=[A-Za-z])(?=https?://)|(?<=[a-z])(?=(?:www\.|github\.com|huggingface\.co)[\w/])")
_FOOTNOTE = re.compile(r"(?<=[A-Za-z.,;:)])(\d)\1{2}(?=\s*(?:https?://|www\.|[A-Z])|\s*$)|[†‡∗]+")
_NOTE_START = re.compile(r"(?<=[A-Za-z.,;:)])(\d)\1{2}(?=[A-Z])")
_NOTE_END = re.compile(r"\.(?=([a-z]+) )")  # "… davinci.which was trained": the interrupted sentence resumes
_NOTE_LIMIT = 600  # characters: a longer stretch is not one footnote
_SENTENCE_GLUE = re.compile(r"(?<=[a-z]{2}[a-z)])\.(?=[A-Z][A-Za-z])")  # "… for LLMs.LLM+P takes …"
_DOTTED = re.compile(r"[A-Za-z][\w\-+]*\.[A-Z][\w\-+]*")  # "TaskMatrix.AI": a name when the text repeats it
_PUNCTUATION_GLUE = re.compile(r"(?<=[a-z])([,;:])(?=[A-Z][a-z]*[A-Z])")  # "evaluation,WizardLM achieves"
_WORD_NUMBER = re.compile(r"(?<![\w.'\u2019-])([a-z]{2,})(\d+(?:[.,]\d+)?)(?![\w-])")
_PREFIX_NAME = re.compile(r"\b([a-z]+)([A-Z][A-Za-z0-9\-+.]*)")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9\-+]*")
LOWER_RUN = re.compile(r"(?<![\w'\u2019\-./@])[a-z]{5,}(?![\w'\u2019\-/@])")  # not inside names, URLs or addresses
# Words a page glues to their neighbour where italics or a link dropped the space ("thatinstruction tuning",
# "notalignedwith", "usingof"). Not "in"/"with" before a word ("infeasible", "withstanding" are words), nor
# "a"/"on"/"to" after one ("automaton", "risotto"), nor "the" inside one ("hypothesize").
_GLUED_BEFORE = ("that", "this", "the", "not", "into", "where", "to", "of", "on", "is")
_GLUED_AFTER = ("and", "of", "the", "with", "where", "that", "for")
_GLUED_BETWEEN = ("and", "where")


@lru_cache(maxsize=200_000)
def known_word(word: str) -> bool:
    """A common English word: a function word, or one cl100k token of 3+ letters with its leading space."""
    lower = word.lower()
    if lower in _FUNCTION_WORDS:
        return True
    if len(lower) < 3 or not lower.isalpha():
        return False
    return len(get_encoding("cl100k_base").encode(" " + lower)) == 1


def repair_scraped(text: str) -> str:
    """``text`` with glued words, URLs and numbers separated and footnote marks dropped (see the module doc)."""
    text = drop_inline_footnotes(text)
    text = _URL_GLUE.sub(" ", text)
    text = _FOOTNOTE.sub(" ", text)
    text = _unglue_sentences(text)
    text = _PUNCTUATION_GLUE.sub(r"\1 ", text)
    text = _WORD_NUMBER.sub(lambda m: f"{m[1]} {m[2]}" if known_word(m[1]) else m[0], text)
    text = _PREFIX_NAME.sub(lambda m: f"{m[1]} {m[2]}" if _split_prefix(m[1], m[2]) else m[0], text)
    names = _names(text)
    text = _TOKEN.sub(lambda m: _split_suffix(m[0], names), text)
    text = re.sub(r"(?<![\w'\u2019-])(a|an)([a-z]{3,})\b", _split_article, text)
    text = LOWER_RUN.sub(lambda m: m[0] if known_word(m[0]) else (unglue_lower(m[0]) or m[0]), text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def drop_inline_footnotes(text: str) -> str:
    """Footnotes arXiv's HTML inlines mid-sentence, dropped: the mark, the note, and its closing full stop, where
    the sentence it interrupts resumes in lower case right after that stop ("… as,111Unless noted, we use
    davinci.which was trained …"). A note that no such resumption closes is left to the mark rule.

    >>> drop_inline_footnotes("We release checkpoints,111Public checkpoints: https://g.io/a.md.which beat PaLM.")
    'We release checkpoints, which beat PaLM.'
    >>> drop_inline_footnotes("Code is public.222Code and data are at https://github.com/x/y")
    'Code is public.222Code and data are at https://github.com/x/y'
    """
    out, start = [], 0
    for mark in _NOTE_START.finditer(text):
        if mark.start() < start:
            continue
        end = next((m for m in _NOTE_END.finditer(text, mark.end(), mark.end() + _NOTE_LIMIT)
                    if known_word(m[1])), None)
        later = _NOTE_START.search(text, mark.end())
        if end is None or (later is not None and later.start() < end.start()):
            continue
        out.append(text[start:mark.start()] + " ")
        start = end.end()
    return "".join(out) + text[start:]


def _unglue_sentences(text: str) -> str:
    """'loop.LLM+P takes' -> 'loop. LLM+P takes'; a dotted token the text has twice ('TaskMatrix.AI') stays whole.

    >>> _unglue_sentences("We build TaskMatrix.AI for APIs. TaskMatrix.AI links models.It scales.")
    'We build TaskMatrix.AI for APIs. TaskMatrix.AI links models. It scales.'
    """
    names = [t for t, n in Counter(_DOTTED.findall(text)).items() if n > 1]
    return _SENTENCE_GLUE.sub(lambda m: m[0] if any(_inside(text, m.start(), n) for n in names) else ". ", text)


def _inside(text: str, dot: int, name: str) -> bool:
    """Whether the dot at ``dot`` is the dot of an occurrence of ``name``."""
    offset = name.index(".")
    return text.startswith(name, dot - offset) if dot >= offset else False


def _split_prefix(prefix: str, rest: str) -> bool:
    """'propose' + 'FlashAttention': split when the lower-case part is a known word (not 'm' of 'mT5')."""
    return known_word(prefix) and (len(prefix) >= 2 or prefix == "a")


def _names(text: str) -> set[str]:
    """Capitalised tokens that stand alone somewhere in the text: the names a glued tail may follow."""
    return {t for t in _TOKEN.findall(text) if t[0].isupper() and len(t) >= 3}


def _split_suffix(token: str, names: set[str]) -> str:
    """'Flippedoutperforms' -> 'Flipped outperforms' when 'Flipped' stands alone elsewhere in the text.

    The name must occur on its own in the same text: "CCPairs", "AGIEval" or "MLPerf" are names
    themselves, not "CCP" or "MLP" glued to a word.
    """
    if not token[0].isupper() or known_word(token):  # "Therefore", "Evaluation" are words, not glue
        return token
    for cut in range(len(token) - 2, 1, -1):  # the longest name first
        head, tail = token[:cut], token[cut:]
        if head in names and tail.isalpha() and tail.islower() and (known_word(tail) or len(tail) >= 5):
            return f"{head} {tail}"
    return token


@lru_cache(maxsize=20_000)
def unglue_lower(word: str, depth: int = 0) -> str | None:
    """A lower-case run that is no word, cut into known words at a glued function word; None when it cannot be.

    >>> unglue_lower("thatinstruction"), unglue_lower("notalignedwith"), unglue_lower("humansandcurrent")
    ('that instruction', 'not aligned with', 'humans and current')
    >>> unglue_lower("infeasible"), unglue_lower("hypothesize"), unglue_lower("withstanding")
    (None, None, None)
    """
    if depth and (word in _FUNCTION_WORDS or (len(word) >= 4 and known_word(word))):
        return word
    if depth > 2:
        return None
    for head in (h for h in _GLUED_BEFORE if word.startswith(h) and len(word) > len(h)):
        if rest := unglue_lower(word[len(head):], depth + 1):
            return f"{head} {rest}"
    for tail in (t for t in _GLUED_AFTER if word.endswith(t) and len(word) > len(t)):
        if rest := unglue_lower(word[:-len(tail)], depth + 1):
            return f"{rest} {tail}"
    for middle in _GLUED_BETWEEN:
        at = word.find(middle, 4)
        left, right = word[:at], word[at + len(middle):]
        if at > 0 and len(right) >= 4 and known_word(left) and known_word(right):
            return f"{left} {middle} {right}"
    return None


def _split_article(match: re.Match) -> str:
    """'achain' -> 'a chain' only when the glued form is no word and the rest is one."""
    whole, rest = match[0], match[2]
    if known_word(whole) or not known_word(rest):
        return whole
    return f"{match[1]} {rest}"
