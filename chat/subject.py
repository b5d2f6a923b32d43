"""What a conversation turn is about, so that a follow-up's "it" can be resolved.

A turn's subject is the named method, model or dataset of its question (QLoRA, GPT-4,
Segment Anything Model), else its key noun phrase ("instruction tuning", "state space
models"). A question that asks *for* a method ("How can a 65B model be finetuned on one
GPU?", "Which model ...?") is about what the answer found: the name its first cited
paper introduces ("We present QLoRA, ..." in the sentences cited [1]) comes first.
Number-unit tokens (48GB, 65B, 4-bit) and generic acronyms (LLM, GPU, NLP) are never
names, and nothing is taken from a "not covered" answer (it lists titles, not findings).

>>> names("How can a 65B parameter model be finetuned on a single 48GB GPU?")
[]
>>> names("Which fine-tuned LLaMA model beats GPT-4? What about the Segment Anything Model?")
['LLaMA', 'GPT-4', 'Segment Anything Model']
>>> key_phrase("Does prompting with intermediate reasoning steps improve arithmetic reasoning?")
'prompting with intermediate reasoning steps'
>>> key_phrase("How do state space models scale?"), key_phrase("What is instruction tuning?")
('state space models', 'instruction tuning')
>>> introduced_name("Extractive answer (no language model):\\n\\nWe present QLoRA, a finetuning method [1]. LoRA [2].")
'QLoRA'
>>> subject_of("How can a 65B parameter model be finetuned on a single 48GB GPU?",
...            "We present QLoRA, an efficient finetuning approach for 48GB GPUs [1].")
Subject(text='QLoRA', extra='')
>>> subject_of("What is instruction tuning?", "We tune a model, which we call FLAN [1].")
Subject(text='instruction tuning', extra='FLAN')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chat.citations import parse_markers, strip_markers
from chat.sentences import STOPWORDS, split_sentences

# A word as written: letters and digits with inner hyphens, dots or pluses (GPT-4, LLM+P, LLM.int8).
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-+.]*[A-Za-z0-9+]|[A-Za-z0-9]")
GENERIC_ACRONYMS = frozenset("""
LLM LM PLM MLLM VLM NLP NLU NLG AI AGI ML DL RL NN DNN GPU CPU TPU API SOTA QA IR CV PDF URL HTML
GB MB KB TB PB GHZ MHZ FLOP FLOPS TFLOP TFLOPS PFLOP MS US EU UK USA
""".split())
QUESTION_WORDS = frozenset("""
what which how why who whom whose when where whether is are was were be been does do did can could should would will
shall may might must has have had
""".split())
# Verbs that end a question's subject noun phrase ("How do state space models *scale*?").
VERBS = frozenset("""
improve help work scale compare reduce increase decrease affect outperform beat use handle save speed need require make
learn generate perform solve replace keep predict turn measure record extrapolate edit train finetune fine-tune
evaluate achieve lead cause change mean matter differ apply allow enable support produce show hold fail depend relate
cost take get run mimic imitate follow answer exist happen rewrite align transfer generalize generalise combine detect
address avoid prevent capture encode represent behave compress quantize accelerate store retrieve select rank rely fit
match exploit leverage tackle overcome mitigate limit boost hurt contribute vary become remain contain include consist
mean give find say claim report propose introduce present describe compute estimate recognize handle build create
design pretrain pre-train adapt update distill distil built made took done seen given got decide choose pick
determine""".split())
_INTRO = re.compile(r"\b(?:present|presents|introduce|introduces|propose|proposes|develop|develops|release|releases|"
                    r"call|calls|called|name|names|named|dub|dubbed|term|termed)\s+(?:a\s+|an\s+|the\s+)?"
                    r"(?:new\s+|novel\s+)?([A-Za-z][\w\-+.]*[\w+])")
_ACRONYM_DEFINED = re.compile(r"\(([A-Za-z][A-Za-z0-9\-+]*[A-Z][A-Za-z0-9\-+]*)\)")
_ASKS_FOR = re.compile(r"^\s*(?:(?:which|what)\s+(?!is\b|are\b|was\b|were\b|does\b|do\b|did\b|about\b|can\b|could\b|"
                       r"would\b|should\b|has\b|have\b|if\b)\w+|how\s+(?:can|could|should|do|does|would)\s+"
                       r"(?:i|we|one|you)\b|is\s+there\b|are\s+there\b|how\s+(?:can|could)\b.*\bbe\s+\w+(?:ed|en)\b)",
                       re.IGNORECASE)
_SKIP = QUESTION_WORDS | frozenset("much many well far often exactly a an the there i we you one and but so also then "
                                   "ok okay please tell me us explain describe".split())


@dataclass(frozen=True)
class Subject:
    """``text`` replaces a follow-up's pronoun; ``extra`` (may be empty) is carried along for retrieval."""

    text: str
    extra: str = ""


def is_name(word: str, first: bool = False) -> bool:
    """A named method/model/dataset token: 'QLoRA', 'GPT-4', 'T5', 'Guanaco' (not first in its sentence)."""
    if not word or word[0].isdigit():
        return False  # 48GB, 65B, 4-bit, 3.5x: numbers with units
    bare = word[:-1] if word.endswith("s") and word[:-1].isupper() else word
    if bare.upper().replace("-", "") in GENERIC_ACRONYMS:
        return False
    tail = word.rsplit("-", 1)[-1]
    if "-" in word and tail.isalpha() and tail.islower() and len(tail) > 2:
        return False  # 'BERT-style', 'IO-aware': an adjective built on a name
    letters = [c for c in word if c.isalpha()]
    strong = sum(c.isupper() for c in letters) >= 2 or (word[0].isupper() and any(c.isdigit() for c in word))
    if strong and len(letters) >= 1:
        return True
    weak = word[0].isupper() and word.lower() not in STOPWORDS and word.lower() not in QUESTION_WORDS
    return weak and not first and len(word) > 1


def names(text: str) -> list[str]:
    """Names in ``text`` in order, consecutive capitalised words joined ('Segment Anything Model')."""
    found: list[str] = []
    for sentence in split_sentences(text) or [text]:
        run: list[str] = []
        for i, match in enumerate(_WORD.finditer(sentence)):
            word = match.group().rstrip(".")
            adjacent = run and sentence[match.start() - 1:match.start()] == " "
            if run and adjacent and word[0].isupper():
                run.append(word)  # 'Segment Anything Model': a capitalised word continues a name
                continue
            if run:
                found.append(" ".join(run))
            run = [word] if is_name(word, first=i == 0) else []
        if run:
            found.append(" ".join(run))
    return list(dict.fromkeys(found))


def key_phrase(question: str, max_words: int = 6) -> str:
    """The noun phrase a question is about: after its question words, up to its verb.

    In "How much memory does QLoRA save?" or "What data type does it introduce?" the first phrase
    is what is asked for; the subject comes after the auxiliary ("QLoRA"), and after "does" a
    lower-case word right after a name is the verb ("does Paramanu cover?"). "The idea behind X"
    is about X.

    >>> key_phrase("How many Indian languages does Paramanu cover?"), key_phrase("what's the idea behind decaying fast weights?")
    ('Paramanu', 'decaying fast weights')
    """
    question = _CONTRACTION.sub(r"\1 is", question)
    tokens = [m.group().rstrip(".") for m in _WORD.finditer(_POSSESSIVE.sub("", question))]
    i = _skip(tokens, 0)
    first, i = _phrase(tokens, i, max_words)
    wh = bool(tokens) and tokens[0].lower() in ("what", "which", "how", "why", "where", "when", "who")
    if wh and first and i < len(tokens) and tokens[i].lower() in QUESTION_WORDS:
        verb_after_name = tokens[i].lower() in ("do", "does", "did")
        second, _ = _phrase(tokens, _skip(tokens, i), max_words, verb_after_name)
        if second:
            return _GENERIC_HEAD.sub("", second)
    return _GENERIC_HEAD.sub("", first)


_CONTRACTION = re.compile(r"\b(what|who|where|how|that|it|there|here)['\u2019]s\b", re.IGNORECASE)
_POSSESSIVE = re.compile(r"(?<=\w)['\u2019]s?\b")  # "attention's performance" -> "attention performance"
# "the idea behind X", "the main purpose of X": the question is about X.
_GENERIC_HEAD = re.compile(r"^(?:(?:main|key|basic|core|central|general)\s+)?(?:idea|ideas|purpose|role|point|goal|aim|"
                           r"intuition|motivation|concept|principle|insight)\s+(?:behind|of|for)\s+(?:the\s+|a\s+|an\s+)?",
                           re.IGNORECASE)


# Words that end a subject phrase as a predicate would: "What is instruction tuning good for?"
_PREDICATES = frozenset("good useful better worse best bad important helpful effective possible necessary needed "
                        "hard difficult easy enough".split())


def _skip(tokens: list[str], i: int) -> int:
    while i < len(tokens) and tokens[i].lower() in _SKIP:
        i += 1
    return i


def _phrase(tokens: list[str], i: int, max_words: int, verb_after_name: bool = False) -> tuple[str, int]:
    """The words from ``i`` up to a verb or auxiliary (stop words trimmed), and where it stopped.

    ``verb_after_name``: a lower-case word right after a name ends the phrase ("does Paramanu cover").
    """
    phrase: list[str] = []
    while i < len(tokens):
        low = tokens[i].lower()
        if phrase and (low in VERBS or low.rstrip("s") in VERBS or low in QUESTION_WORDS or _past(low)
                       or low in _PREDICATES or (verb_after_name and tokens[i].isalpha() and tokens[i].islower()
                                                 and is_name(phrase[-1]))):
            break
        phrase.append(tokens[i])
        i += 1
        if len(phrase) >= max_words:
            break
    while phrase and phrase[-1].lower() in STOPWORDS:
        phrase.pop()
    while phrase and phrase[0].lower() in STOPWORDS:
        phrase.pop(0)
    return " ".join(phrase), i


def _past(word: str) -> bool:
    """'trained', 'finetuned' -> True: a past participle ending the subject ("model trained on ...")."""
    return word.endswith("ed") and (word[:-2] in VERBS or word[:-1] in VERBS)


def introduced_name(answer: str) -> str:
    """The name the answer's first cited paper introduces, from the sentences cited [1]; '' when none."""
    for sentence in split_sentences(answer):
        if not any(1 in m.numbers for m in parse_markers(sentence)):
            continue
        text = strip_markers(sentence).strip()
        candidates = [(m.start(1), m.group(1)) for m in (*_INTRO.finditer(text), *_ACRONYM_DEFINED.finditer(text))]
        opening = _WORD.match(text)
        if opening and sum(c.isupper() for c in opening.group()) >= 2:
            candidates.append((0, opening.group()))  # "QLoRA backpropagates ...": a sentence about the name
        for _, word in sorted(candidates):
            if is_name(word.rstrip(".")):
                return word.rstrip(".")
    return ""


def asks_for_entity(question: str) -> bool:
    """'Which model ...?', 'How can X be done?', 'Is there a benchmark ...?': the answer names the subject."""
    return bool(_ASKS_FOR.match(question))


def subject_of(question: str, answer: str = "") -> Subject:
    """The subject of one turn (see the module docstring); ``answer`` is that turn's answer text."""
    own = names(question)
    phrase = key_phrase(question)
    found = introduced_name(answer) if answer else ""
    head = _head(own, phrase)
    others = [n for n in own if n != head and n not in head]
    order = [found, head, *others] if asks_for_entity(question) else [head, *others, found]
    order = [t for t in order if t]
    if not order:
        return Subject("")
    text = order[0]
    # A subject that is only a phrase ("instruction tuning") is pinned to the paper that answered it.
    extra = found if found and text not in (found, *own) and found.lower() not in text.lower() else ""
    return Subject(text, extra)


def _head(own: list[str], phrase: str) -> str:
    """What the question is about: a name inside its subject phrase, else the phrase, else its first name.

    "How do state space models compare with attention for BERT pretraining?" is about state space
    models, not BERT; in "KV cache" or "QLoRA finetuning" the name only modifies the phrase."""
    inside = [n for n in own if n in phrase]
    if inside:
        short = len(phrase.split()) <= 3 and inside[0] in phrase.split()
        return phrase if short else inside[0]
    if own and all(w.lower() in STOPWORDS or w.lower() in _GENERIC for w in phrase.split()):
        return own[0]  # "Were the largest models the most truthful on TruthfulQA?" is about TruthfulQA
    return phrase or (own[0] if own else "")


# Words that make no subject by themselves: a phrase of only these yields to a name the question gives.
_GENERIC = frozenset("""model models language languages large larger largest small smaller smallest big bigger biggest
best most least more less method methods system systems network networks technique techniques framework frameworks
result results data performance task tasks truthful accurate good better""".split())
