"""Refusals: a model saying the sources do not answer, in whatever words it uses.

"Not covered" belongs to the evidence gate (chat/abstain.py), which decides before any
model runs. A model that refuses anyway is not believed: its refusal sentences are
dropped from an otherwise supported answer, and a reply that is nothing but refusal is
replaced by the extractive answer (chat/answer.py).

>>> [is_refusal(s) for s in ("The indexed papers do not answer this question.",
...                          "Unfortunately, the provided abstracts don't mention the memory savings.",
...                          "There is no information about Adam in the sources.",
...                          "I'm sorry, but I cannot answer that based on the given context.",
...                          "QLoRA does not degrade performance [1].",
...                          "The paper does not report results on ImageNet.",
...                          "Chain-of-thought prompting is not limited to arithmetic [2].")]
[True, True, True, True, False, True, False]
"""

from __future__ import annotations

import re

_WHAT = r"(?:sources?|abstracts?|papers?|documents?|context|texts?|passages?|excerpts?|information|evidence|data)"
_SAYING = (r"(?:contain|provide|mention|include|answer|address|cover|discuss|specify|say|state|give|offer|describe|"
           r"explain|detail|report|indicate|support|tell)")
_PATTERNS = [
    # "the (provided) sources do not mention …", "the given abstracts don't say …"
    rf"\b(?:the|these|those|provided|given|indexed|available)\s+(?:\w+\s+)?{_WHAT}\s+(?:do|does|did|doesn't|don't)"
    rf"(?:\s+not|n['\u2019]t)?\s+(?:seem\s+to\s+|appear\s+to\s+)?{_SAYING}",
    r"\b(?:there\s+is|there's|there\s+are)\s+no\s+(?:specific\s+|direct\s+|explicit\s+|relevant\s+)?"
    r"(?:mention|information|data|evidence|details?|answer|discussion)\b",
    r"\bno\s+(?:specific\s+|relevant\s+)?(?:information|mention|details?|answer)\s+(?:is|are|was|were)?\s*"
    r"(?:provided|given|available|found|mentioned)",
    rf"\b(?:not|isn't|aren't)\s+(?:explicitly\s+|directly\s+)?(?:mentioned|specified|stated|provided|discussed|"
    rf"covered|addressed|available|found)\s+(?:in|by)\s+(?:the|these|any)\s+(?:\w+\s+)?{_WHAT}",
    r"\b(?:i'm|i\s+am|i\s+was)\s+(?:sorry|unable|not\s+able)",
    r"\bi\s+(?:cannot|can't|can\s+not|could\s+not|couldn't|do\s+not|don't)\s+(?:find|answer|determine|provide|"
    r"tell|say|know)",
    r"\b(?:unable|not\s+possible|impossible)\s+to\s+(?:answer|determine|tell|say|find|know)",
    r"\bcannot\s+be\s+(?:answered|determined|inferred|found)",
    r"\b(?:insufficient|not\s+enough|no\s+sufficient)\s+(?:information|evidence|data|context)",
    r"\bdo(?:es)?\s+not\s+(?:answer|cover)\s+this\s+question",
    rf"\b{_WHAT}\s+(?:is|are)\s+(?:silent|unclear)\s+(?:on|about)",
]
_REFUSAL = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def is_refusal(sentence: str) -> bool:
    """Whether ``sentence`` says the sources (or the model) cannot answer, rather than stating a finding."""
    return bool(_REFUSAL.search(sentence or ""))
