"""Follow-up questions become standalone search queries before retrieval.

A question asked after others is rewritten only when it leans on them: it has a
pronoun ("it", "their"), opens like a follow-up ("and", "what about") or is too
short to search on its own. With a model, the model rewrites it (its output is
checked and the simple method takes over when the output is unusable); without,
pronouns are replaced by the salient name of the previous turn (an acronym such
as "QLoRA" or a capitalised term) and the previous question's key terms are added.
A model's rewrite must keep at least half of the follow-up's content words and add
one from the previous turn, else the simple method is used (small models tend to
answer the question instead of rewriting it).

>>> rewrite_simple("and how much memory does it save?", [("What is QLoRA?", "QLoRA finetunes in 4 bits [1].")])
'how much memory does QLoRA save?'
>>> rewrite_simple("What about their limitations?", [("How do state space models scale?", "They scale linearly [1].")])
'What about state space models limitations?'
>>> rewrite_simple("What is direct preference optimization?", [("What is QLoRA?", "...")])
'What is direct preference optimization?'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from chat.citations import strip_markers
from chat.sentences import STOPWORDS, content_words, shorten

_PRONOUNS = {"it": "", "its": "'s", "it's": " is", "they": "", "them": "", "their": "", "theirs": "",
             "this": "", "that": "", "these": "", "those": "", "he": "", "she": "", "his": "'s", "her": "'s"}
_LEADING = re.compile(r"^\s*(?:and|but|also|so|then|ok(?:ay)?|and\s+what\s+about)\b[\s,]*", re.IGNORECASE)
_FOLLOW_UP = re.compile(r"^\s*(?:and|but|also|so|then|what about|how about|and what|why|why not|really|same)\b",
                        re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9\-\.]*[A-Za-z0-9]|[A-Za-z]")
_QUESTION_WORDS = {"what", "how", "why", "which", "who", "when", "where", "does", "do", "is", "are", "can", "could"}


@dataclass(frozen=True)
class RewriteConfig:
    max_content_words: int = 2  # a question with this few content words cannot stand on its own
    max_carry_terms: int = 5
    llm_max_tokens: int = 48
    history_chars: int = 400  # of the previous answer shown to the model


def needs_context(question: str, config: RewriteConfig = RewriteConfig()) -> bool:
    """Whether ``question`` leans on earlier turns (pronoun, follow-up opening, or too few content words)."""
    words = [w.lower() for w in _TOKEN.findall(question)]
    if any(w in _PRONOUNS for w in words) or _FOLLOW_UP.match(question):
        return True
    return len(content_words(question)) <= config.max_content_words


def salient_names(text: str) -> list[str]:
    """Names in ``text``: acronyms and mixed-case words (QLoRA, GPT-4, LLaMA), then capitalised words."""
    tokens = _TOKEN.findall(text)
    strong = [t for t in tokens if sum(c.isupper() for c in t) >= 2 or (t[0].isupper() and any(c.isdigit() for c in t))]
    weak = [t for i, t in enumerate(tokens) if t[0].isupper() and t.lower() not in STOPWORDS
            and t.lower() not in _QUESTION_WORDS and i > 0 and t not in strong]
    return list(dict.fromkeys(strong + weak))


def key_phrase(question: str) -> str:
    """The previous question without its question words: 'How do state space models scale?' -> 'state space models'."""
    words = _TOKEN.findall(question)
    kept = [w for w in words if w.lower() not in STOPWORDS and w.lower() not in _QUESTION_WORDS]
    # The verb at the end of a question ("scale", "work") is rarely the topic.
    if len(kept) > 2 and kept[-1].islower() and words and kept[-1] == words[-1]:
        kept = kept[:-1]
    return " ".join(kept)


def rewrite_simple(question: str, history: Sequence[tuple[str, str]], config: RewriteConfig = RewriteConfig()) -> str:
    """History-aware rewrite without a model (see the module docstring)."""
    if not history or not needs_context(question, config):
        return question
    previous_q, previous_a = history[-1]
    names = salient_names(previous_q) or salient_names(strip_markers(previous_a))[:1]
    topic = names[0] if names else key_phrase(previous_q)
    if not topic:
        return question
    body = _LEADING.sub("", question).strip() or question
    replaced, done = [], False
    for token in re.split(r"(\s+)", body):
        bare = token.strip("?,.!").lower()
        if not done and bare in _PRONOUNS:
            token = topic + _PRONOUNS[bare] + token[len(token.rstrip("?,.!")):]
            done = True
        replaced.append(token)
    rewritten = "".join(replaced)
    if done:
        return rewritten
    extra = [t for t in ([topic] + names[1:config.max_carry_terms]) if t.lower() not in rewritten.lower()]
    return f"{rewritten.rstrip('?. ')} ({', '.join(extra)})?" if extra else rewritten


def rewrite_with_model(question: str, history: Sequence[tuple[str, str]], llm,
                       config: RewriteConfig = RewriteConfig()) -> str | None:
    """The model's standalone version of ``question``, or None when its output is unusable."""
    previous_q, previous_a = history[-1]
    messages = [
        {"role": "system", "content": "Rewrite the user's last question as one standalone question that can be "
                                      "understood without the conversation. Keep names and technical terms. Do not "
                                      "answer it. Reply with the rewritten question only.\nExample: previous "
                                      "question 'What is BERT?', last question 'How big is it?' -> 'How big is BERT?'"},
        {"role": "user", "content": f"Previous question: {previous_q}\nPrevious answer: "
                                    f"{shorten(strip_markers(previous_a), config.history_chars)}\n"
                                    f"Last question: {question}\nStandalone query:"}]
    text = "".join(llm.stream(messages, max_tokens=config.llm_max_tokens, stop=["\n"]))
    text = re.sub(r"^\s*(standalone query|query|rewritten question)\s*:\s*", "", text.strip(), flags=re.IGNORECASE)
    quoted = re.search(r"[\"\u201c]([^\"\u201d]{5,200}\?)[\"\u201d]", text)  # 'The answer to "X?" is ...' -> X?
    text = (quoted.group(1) if quoted else text).strip(" \"'")
    own, found = set(content_words(question)), set(content_words(text))
    # It must keep what the follow-up asks (at least half its content words) and add something from before.
    if not 2 <= len(text.split()) <= 40 or len(own & found) * 2 < len(own):
        return None
    if not (found - own) & set(content_words(previous_q + " " + previous_a)):
        return None
    return text


def rewrite(question: str, history: Sequence[tuple[str, str]], llm=None,
            config: RewriteConfig = RewriteConfig()) -> str:
    """Standalone query for ``question`` given ``history`` ((user, assistant) pairs, oldest first)."""
    if not history or not needs_context(question, config):
        return question
    if llm is not None:
        rewritten = rewrite_with_model(question, history, llm, config)
        if rewritten:
            return rewritten
    return rewrite_simple(question, history, config)
