"""Which sentences of the retrieved abstracts answer a question: the scoring both answer modes share.

A sentence scores its cosine with the question (MiniLM) plus a little keyword overlap, then a
nudge by what the sentence *does* and what the question *asks*: a result sentence (numbers,
"outperforms", "we find") answers "how much" and "does X improve Y" questions; a method
sentence ("we propose…", "by …-ing") answers "how" and "what is" questions; background and
motivation ("X has become important", "however, … remains challenging") rarely answers
anything; a "code is available at https://…" sentence never does. Extraction debris (a
table row, a footnote line, a sentence of a few words) is not offered at all, and URLs,
e-mail addresses and footnote marks are removed from what is quoted.

>>> question_kind("How much memory does QLoRA save?"), question_kind("Does CoT improve arithmetic?")
('numeric', 'yes_no')
>>> sentence_role("Our code is available at https://github.com/x/y."), sentence_role("However, LLMs remain costly.")
('resource', 'background')
>>> tidy("It reaches 99.3% of ChatGPT (see https://x.io/a)\u2020, write to a@b.org.")
'It reaches 99.3% of ChatGPT, write to.'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chat.sentences import overlap, split_sentences
from chat.contradictions import names, numbers
from ingest.records import Paper

# What a "what … does X reach?" question asks for when it asks for a number: "what five-shot MMLU score".
_MEASURE = (r"(?:percentage|fraction|share|accuracy|size|speed-?up|score|number|proportion|rate|gain|probability|"
            r"memory|mIoU|F1|BLEU|perplexity|ratio|cost|latency|throughput|compression|reduction|improvement)s?\b")
# Words that make a question a comparison whatever else it says ("How does X compare with Y?").
COMPARES = re.compile(r"\b(?:compare[sd]?|comparison|versus|vs\.?|differ(?:ence|s)?|than)\b", re.I)
_KINDS = (
    ("why", re.compile(r"^\s*(?:and\s+)?why\b", re.I)),
    ("numeric", re.compile(r"\bhow\s+(?:much|many|large|big|fast|long|small|often|well)\b|\bby\s+how\b|"
                           rf"\bwhat\s+(?:[\w-]+\s+){{0,3}}{_MEASURE}|\b(?:at|up\s+to)\s+what\b|"
                           r"\bwhat\s+[^?,]{0,60}\b(?:does|do|did)\s+[^?,]{1,60}\b(?:achieve|reach|get|see|obtain|"
                           r"attain|score)\b|\bhow\s+\w+\s+(?:faster|smaller|larger|better)\b", re.I)),
    ("comparison", COMPARES),
    ("yes_no", re.compile(r"^\s*(?:does|do|did|is|are|was|were|can|could|will|would|should|has|have|had)\b", re.I)),
    ("method", re.compile(r"^\s*(?:and\s+)?how\b|\b(?:method|approach|technique|algorithm|mechanism|strategy|"
                          r"architecture|procedure|recipe)\b", re.I)),
    ("definition", re.compile(r"^\s*(?:what|who)\s+(?:is|are|was|were)\b", re.I)),
)
_TWO_THINGS = re.compile(r"\b(?:and|or|versus|vs\.?)\s+(?:in\s+|the\s+|its\s+)?[A-Z]|\b(?:each|both)\b")
_ROLES = (
    ("resource", re.compile(r"https?://|www\.|github\.com|\b(?:code|data|dataset|models?|checkpoints?|weights|demo|"
                            r"toolkit|software|materials?)\b[^.]{0,60}\b(?:available|released?|public(?:ly)?|"
                            r"open-?sourced?|can be found|at)\b[^.]{0,30}$", re.I)),
    ("result", re.compile(r"\b(?:outperform|achiev|improv|surpass|exceed|beat|reach|obtain|yield|reduc|increas|"
                          r"speed|boost|match|rival)\w*|\b(?:we|results?|experiments?|analys[ie]s)\s+(?:also\s+)?"
                          r"(?:show|find|found|demonstrate|observe|reveal|indicate|suggest)|state-of-the-art|"
                          r"\d+(?:\.\d+)?\s*(?:%|x\b|×|times\b|-fold)", re.I)),
    ("method", re.compile(r"\b(?:we|this\s+(?:paper|work))\s+(?:\w+\s+)?(?:propose|introduce|present|develop|design|"
                          r"use|leverage|build|train|apply|adopt|employ|describe)|\bour\s+(?:method|approach|model|"
                          r"framework|system|technique|algorithm)\b|\b(?:based|built|trained)\s+on\b|\bconsists?\s+of\b|"
                          r"\bby\s+\w+ing\b", re.I)),
    ("background", re.compile(r"^(?:recent(?:ly)?|in\s+recent\s+years|however|despite|although|while|traditional|"
                              r"existing|current|prior|previous)\b|\b(?:has|have)\s+(?:become|attracted|gained|"
                              r"emerged|shown\s+(?:great|remarkable|impressive))|\b(?:remains?|is|are)\s+(?:still\s+)?"
                              r"(?:a\s+)?(?:challenging|challenge|difficult|unclear|limited|important|crucial|open)\b|"
                              r"\bincreasingly\b|\blittle\s+is\s+known\b", re.I)),
)
# A sentence that goes on from the one before ("It consists of two parts", "Specifically, we …") is
# about what that sentence introduced: it is also scored with that sentence as its context.
_FOLLOW_ON = re.compile(r"^(?:it|its|this|these|they|their|such|specifically|concretely|in\s+particular|first(?:ly)?|"
                        r"second(?:ly)?|then|next|finally|to\s+(?:this\s+end|do\s+so)|the\s+(?:proposed\s+|resulting\s+)?"
                        r"(?:method|approach|model|framework|system|technique|algorithm|pipeline))\b", re.I)
_URL = re.compile(r"\([^()]*(?:https?://|www\.)[^()]*\)|(?:https?://|www\.)\S+|\S+@\S+\.[a-z]+")
_MARKS = re.compile(r"[\u2020\u2021\u2217*\u00a7]+(?=[\s.,;:)]|$)")


@dataclass(frozen=True)
class RelevanceConfig:
    """Weights of the sentence score, added to its cosine with the question.

    Fitted as a logistic ranker on which sentences of the top three papers hold the key facts of
    our development questions (benchmarks/answer_questions.jsonl; benchmarks/RESULTS.md,
    "Extractive answers"), then rounded toward smaller values: keyword overlap counts about as
    much as meaning; opening sentences and lower-ranked papers rarely hold the answer.
    """

    keywords: float = 1.2  # share of the question's content words in the sentence
    opening: float = -0.6  # the abstract's first sentence, unless it states a method or result: usually motivation
    paper_rank: float = -0.6  # per rank below the best retrieved paper
    background: float = -0.3  # "however, … remains challenging", "has become important"
    question_mark: float = -0.3  # a sentence that asks is not an answer
    result_for_yes_no: float = 0.5  # a result sentence, for "does X improve Y" and comparisons
    number_for_numeric: float = 0.4  # a number the question does not contain, for "how much" questions
    name_for_method: float = 0.3  # a name the question does not contain, for "what method/what is" questions
    method: float = 0.2  # "we propose …", "by …-ing"
    min_words: int = 5
    follow_on: bool = True  # a follow-on sentence ("It consists of …") takes its cosine with the one before it as context


@dataclass(frozen=True)
class Scored:
    paper: int  # index into the papers given
    position: int  # sentence index in the abstract
    sentence: str  # tidied for quoting
    score: float
    cosine: float


def question_kind(question: str) -> str:
    """'why', 'numeric', 'comparison', 'yes_no', 'method', 'definition' or 'other' (first match wins).

    Two names joined by "and", "or" or "versus" make a comparison too: ``question_kind("How do
    ALiBi and Unlimiformer handle long inputs?")`` -> 'comparison'.
    """
    kind = next((kind for kind, pattern in _KINDS if pattern.search(question)), "other")
    if kind not in ("why", "comparison") and _TWO_THINGS.search(question) and len(names(question)) >= 2:
        return "comparison"
    return kind


def sentence_role(sentence: str) -> str:
    """'resource', 'result', 'method', 'background' or 'other' (first match wins)."""
    return next((role for role, pattern in _ROLES if pattern.search(sentence)), "other")


def tidy(sentence: str) -> str:
    """The sentence without URLs, e-mail addresses and footnote marks."""
    text = _MARKS.sub("", _URL.sub("", sentence))
    return re.sub(r"\s+([.,;:!?)])", r"\1", re.sub(r"\(\s*[,;]?\s*\)|\s{2,}", " ", text)).strip(" ,;")


def is_debris(sentence: str, min_words: int = 5) -> bool:
    """Too short, mostly not words (a table row, numbers and symbols), or a stray fragment."""
    tokens = sentence.split()
    if len(tokens) < min_words:
        return True
    wordy = sum(1 for t in tokens if re.fullmatch(r"[A-Za-z][A-Za-z'\u2019\-]*[.,;:]?", t))
    return wordy < 0.5 * len(tokens) or sentence.count("|") >= 2


def score_sentences(query: str, papers: Sequence[Paper], vectors, config: RelevanceConfig = RelevanceConfig()
                    ) -> list[Scored]:
    """Every quotable sentence of ``papers`` (best first) with its score for ``query`` (see RelevanceConfig)."""
    items = []
    wants_resources = bool(re.search(r"\b(?:code|data|release|available|github)", query, re.I))
    for i, paper in enumerate(papers):
        for j, raw in enumerate(split_sentences(paper.abstract)):
            role = sentence_role(raw)
            text = tidy(raw)
            if (role != "resource" or wants_resources) and not is_debris(text, config.min_words):
                items.append((i, j, text, role))
    if not items:
        return []
    cosine = np.zeros(len(items)) if vectors is None else _cosines(query, [t for _, _, t, _ in items], vectors)
    prior = np.array([_prior(query, question_kind(query), i, j, text, role, config) for i, j, text, role in items])
    if vectors is not None and config.follow_on:
        cosine = _with_context(query, papers, items, cosine, vectors)
    scores = cosine + prior
    return [Scored(i, j, t, float(s), float(c)) for (i, j, t, _), s, c in zip(items, scores, cosine)]


def _prior(query: str, kind: str, paper: int, position: int, text: str, role: str, config: RelevanceConfig) -> float:
    """Everything but the cosine: keywords, position, paper rank, and what the sentence does for this question."""
    score = config.keywords * overlap(query, text) + config.paper_rank * paper
    score += config.opening * (position == 0 and role not in ("method", "result"))  # "We present X, …" opens well
    score += config.question_mark * text.rstrip().endswith("?")
    score += config.background * (role == "background") + config.method * (role == "method")
    if kind in ("yes_no", "comparison") and role == "result":
        score += config.result_for_yes_no
    if kind == "numeric" and set(numbers(text)) - set(numbers(query)):
        score += config.number_for_numeric
    if kind in ("method", "definition", "other") and {n.lower() for n in names(text)} - {n.lower() for n in names(query)}:
        score += config.name_for_method
    return score


def _with_context(query: str, papers: Sequence[Paper], items: list, cosine: np.ndarray, vectors) -> np.ndarray:
    """``cosine`` where each follow-on sentence has its cosine read with the sentence before it, when higher.

    "It consists of two components: first, devising a plan …" says nothing of Plan-and-Solve by
    itself; after "we propose Plan-and-Solve (PS) Prompting." it answers "What are the parts of
    Plan-and-Solve?".
    """
    follow = [n for n, (_, j, text, _) in enumerate(items) if j > 0 and _FOLLOW_ON.match(text)]
    if not follow:
        return cosine
    split = {i: split_sentences(papers[i].abstract) for i in {items[n][0] for n in follow}}
    texts = [split[items[n][0]][items[n][1] - 1] + " " + items[n][2] for n in follow]
    out = cosine.copy()
    out[follow] = np.maximum(cosine[follow], _cosines(query, texts, vectors))
    return out


def _cosines(query: str, texts: list[str], vectors) -> np.ndarray:
    matrix = vectors([query] + texts)
    return matrix[1:] @ matrix[0]
