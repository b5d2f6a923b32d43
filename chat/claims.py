"""What an answer's claim says once read in place: its pronoun resolved, and whether it only restates the question.

A model's answer sentence is judged alone against the sources (chat.attribute), so "This
outperforms the state-of-the-art systems" loses the subject the sentence before it named, and
"The weaknesses showed up when …" can be supported while it tells the reader nothing they did
not ask.
"""

from __future__ import annotations

import re

from chat.sentences import content_words
from chat.subject import names

_PRONOUN = re.compile(r"^(it|this|they|these|its|their)\b(?=\s+[a-z])", re.IGNORECASE)


def named_opening(before: str, claim: str) -> str:
    """``claim`` with its opening "It"/"They" ("Its"/"Their") replaced by the name ``before`` opens with, for a claim
    that will be read without ``before``; '' when it opens otherwise ("This …" names an act, not a thing) or
    ``before`` opens with no name.

    >>> named_opening("TWIST is trained differently.", "It uses a warm start [1].")
    'TWIST uses a warm start [1].'
    >>> named_opening("The model is trained differently.", "It uses a warm start [1].")
    ''
    """
    found = _PRONOUN.match(claim.lstrip())
    if not found or found.group(1).lower() not in ("it", "its", "they", "their"):
        return ""
    renamed = resolved([before, claim.lstrip()])[1]
    return renamed if renamed != claim.lstrip() else ""


def resolved(claims: list[str]) -> list[str]:
    """The claims to judge, a leading pronoun replaced by the first name of the claim before it: alone, "This
    outperforms the state-of-the-art systems" lost the subject its source names ("Evaporate-Code+ not only
    outperforms …"). Only for judging; the answer keeps the model's words.

    >>> resolved(["Evaporate-Code+ synthesizes code.", "This outperforms prior systems.", "Its cost is low."])
    ['Evaporate-Code+ synthesizes code.', 'Evaporate-Code+ outperforms prior systems.', "Evaporate-Code+'s cost is low."]
    """
    out = list(claims)
    for k in range(1, len(claims)):
        found = _PRONOUN.match(claims[k])
        if not found:
            continue
        # the name the claim before opens with (its subject, not the "MMLU" of "On MMLU, …"); resolved, so
        # "It … . Its …" keeps it
        opening = re.sub(r"^(?:the|our)\s+", "", out[k - 1], flags=re.IGNORECASE)
        before = [n for n in names(out[k - 1]) if opening.startswith(n)]
        if before:
            name = before[0] + ("'s" if found.group(1).lower() in ("its", "their") else "")
            out[k] = name + claims[k][found.end():]
    return out


# A yes/no question restated is its affirmative answer ("Can QLoRA finetune a 65B model?" -> "QLoRA can
# finetune a 65B model."), so only other questions have echoes.
_POLAR = re.compile(r"^\W*(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|may|might|must)\b",
                    re.IGNORECASE)
_ANSWER_WORD = re.compile(r"\b(?:yes|no|not|never|cannot|without|neither|nor)\b|n't\b", re.IGNORECASE)


def is_echo(claim: str, question: str) -> bool:
    """Whether ``claim`` only restates ``question``: every content word is the question's, and it adds
    no yes, no or negation. It can be supported, yet it tells the reader nothing they did not ask.

    >>> q = "What weaknesses showed up when ChatGPT's reasoning was audited using Pokémon battles?"
    >>> is_echo("The weaknesses showed up when ChatGPT's reasoning was audited using Pokémon battles.", q)
    True
    >>> is_echo("ChatGPT's reasoning failed on type matchups in Pokémon battles.", q)
    False
    >>> is_echo("QLoRA can finetune a 65B model on one GPU.", "Can QLoRA finetune a 65B model on one GPU?")
    False
    """
    if not question.strip() or _POLAR.match(question):
        return False
    words = set(content_words(claim))
    added = {m.group().lower() for m in _ANSWER_WORD.finditer(claim)} - \
        {m.group().lower() for m in _ANSWER_WORD.finditer(question)}
    return bool(words) and words <= set(content_words(question)) and not added
