"""Text from papers and from users is untrusted: what may be stored, prompted and printed.

Three dangers, three functions. A language model's chat template parses some strings as
control tokens (``<|im_start|>``, ``[INST]``, ``</s>``): :func:`strip_control_tokens` removes
them, also when spelled with fullwidth or lookalike brackets and bars that NFKC or a sloppy
tokenizer would fold into the real thing. A terminal obeys escape sequences (ESC, BEL, the
C1 controls): :func:`strip_control_chars` removes them from stored text, and
:func:`printable` escapes them in anything printed. :func:`normalise_question` applies the
same cleaning to a question and caps its length.

>>> strip_control_tokens("Hi <|im_start|>system ＜｜im_end｜＞ [INST] ok [/INST]</s>")
'Hi system   ok '
>>> printable("title \\x1b]0;pwned\\x07 end")
'title \\\\x1b]0;pwned\\\\x07 end'
>>> normalise_question("  What is\\tQLoRA?\\x1b[2J <|im_end|> ")
'What is QLoRA?'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

MAX_QUESTION_CHARS = 2000

# Characters that look like the ASCII punctuation of control tokens, mapped to it: the fullwidth
# and small forms NFKC folds (＜ ﹤ ｜ ［), and lookalikes it keeps (‹ 〈 ∣ 〔 ...).
_LOOKALIKES = str.maketrans({
    **dict.fromkeys("＜﹤‹〈⟨˂ᐸ〈《≺", "<"), **dict.fromkeys("＞﹥›〉⟩˃ᐳ〉》≻", ">"),
    **dict.fromkeys("｜ǀ∣│┃￨⏐❘丨", "|"), **dict.fromkeys("［〔⟦【〚", "["), **dict.fromkeys("］〕⟧】〛", "]"),
})
_TOKEN = re.compile(
    r"<\|[^<>|\n]{0,48}\|>"  # <|im_start|>, <|endoftext|>, <|eot_id|>, <|user|>, ...
    r"|<\s*/?\s*(?:s|unk|pad|bos|eos|sep|cls|mask|start_of_turn|end_of_turn|think|tool_call|tool_response)\s*>"
    r"|<</?SYS>>|\[/?(?:INST|SYS|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS|SYSTEM_PROMPT)\]",
    re.IGNORECASE)
# C0 controls but tab and newline, DEL, C1 controls; bidirectional overrides and isolates,
# which reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Whole escape sequences go, not just their ESC: CSI (colours, cursor, "clear screen"), OSC
# (window title, hyperlinks) up to its BEL/ST terminator, and two-character escapes.
_SEQUENCE = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]{0,512}(?:\x07|\x1b\\|\x9c)?"
                       r"|\x1b[@-Z\\-_]")
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNPRINTABLE_LINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def strip_control_tokens(text: str) -> str:
    """Remove chat-template control tokens, in any fullwidth or lookalike spelling.

    Tokens are found in a skeleton of ``text`` where lookalikes are their ASCII originals
    (one character for one), so only the token's own characters are removed.
    """
    skeleton = text.translate(_LOOKALIKES)  # one character for one: spans line up with ``text``
    pieces, last = [], 0
    for match in _TOKEN.finditer(skeleton):
        pieces.append(text[last:match.start()])
        last = match.end()
    return "".join(pieces) + text[last:] if pieces else text


def strip_control_chars(text: str) -> str:
    """Remove terminal escape sequences and control characters (tab and newline stay).

    >>> strip_control_chars("a\\x1b[31mred\\x1b[0m \\x1b]0;title\\x07b\\x07")
    'ared b'
    """
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def printable(text: str, newlines: bool = True) -> str:
    r"""Text safe to print on a terminal: controls (and lone surrogates) shown as escapes.

    ``newlines=False`` escapes newlines too, for one-line messages.

    >>> printable("a\x9bb\u202ec\udcff\nd", newlines=False)
    'a\\x9bb\\u202ec\\udcff\\nd'
    """
    return (_UNPRINTABLE if newlines else _UNPRINTABLE_LINE).sub(_escape, str(text))


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return {"\n": "\\n", "\r": "\\r"}.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def clean_untrusted(text: str, *removals: Callable[[str], str]) -> str:
    """NFKC, control characters removed, then control tokens (and ``removals``) until none is left.

    Removing one piece can join a token from the pieces around it, so removal repeats:
    ``clean_untrusted("<|im_<|x|>start|>go")`` -> 'go'. Whitespace is left as it is.
    """
    text = strip_control_chars(unicodedata.normalize("NFKC", text))
    while True:
        cleaned = text
        for removal in (*removals, strip_control_tokens):
            cleaned = removal(cleaned)
        if cleaned == text:
            return text
        text = cleaned


def normalise_question(question: str, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """A question as retrieval and prompts may use it; ValueError when empty or too long.

    >>> normalise_question("x" * 2001)
    Traceback (most recent call last):
    ...
    ValueError: the question is 2,001 characters long; the limit is 2,000
    """
    if not isinstance(question, str):
        raise ValueError(f"the question must be text, not {type(question).__name__}")
    if len(question) > 4 * max_chars:  # do not even normalise megabytes
        raise ValueError(f"the question is {len(question):,} characters long; the limit is {max_chars:,}")
    text = " ".join(clean_untrusted(question).split())
    if not text:
        raise ValueError("the question is empty")
    if len(text) > max_chars:
        raise ValueError(f"the question is {len(text):,} characters long; the limit is {max_chars:,}")
    return text
