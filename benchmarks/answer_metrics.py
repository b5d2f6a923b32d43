"""Scoring answers against key facts and the sources they cite: the figures of ``python -m benchmarks.answers``.

Each answered question is a :class:`Record` (what ``benchmarks.answers`` dumps, one JSON line
each, from this code or an older one). The figures are judged from the *text the user reads*:
its sentences and markers, against the abstracts of the papers it cites, with the support
check of chat/support.py; the answerer's own bookkeeping is not trusted.

- key-fact recall: share of the key facts (short strings: a number, a name, a finding) the answer
  contains, hyphens, case and thousands separators aside;
- own-words recall: the same, counting only the model's own sentences that the check did not flag
  (not the "From the abstract:" quotes that follow them); for extractive answers, the answer;
- right paper first: the first citation is one of the question's papers;
- cited sentences: share of answer sentences (claims) carrying a citation;
- citation precision: share of cited claims that a cited source supports;
- unsupported: share of claims no source they cite supports (flagged ones included);
- padded: answers citing a paper that is not one of the question's papers;
- junk: answers quoting extraction debris (URLs, e-mail addresses, glued words, footnote digits).

>>> r = Record("How much memory?", ("p1",), ("48GB",), "numeric", "extractive", "", "The model fits in 48GB of GPU memory [1].",
...            (("p1", "The model fits in 48GB of GPU memory."),), False, "", 0.0, 0.1, 0.5)
>>> s = score([r], vectors=None)
>>> s.fact_recall, s.right_first, s.cited_share, s.precision, s.padded
(1.0, 1.0, 1.0, 1.0, 0.0)
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ingest.repair import LOWER_RUN, known_word, unglue_lower  # the repair's own test of a glued lower-case run

_JUNK = re.compile(r"https?://|www\.|\S+@\S+\.\w+|\b[a-z]{3,}[A-Z][a-z]{2,}|\b[a-z]+\d{3}(?:\b|http)|\be\.g\.?$|"
                   r"[\u2020\u2021\u2217]")


def is_junk(answer: str) -> bool:
    """Debris in an answer: a URL, an address, a footnote mark, or words glued together ("thatinstruction")."""
    return bool(_JUNK.search(answer)) or any(not known_word(w) and unglue_lower(w) for w in LOWER_RUN.findall(answer))


@dataclass(frozen=True)
class Record:
    question: str
    papers: tuple[str, ...]  # the papers that answer it (empty: uncovered, should abstain)
    facts: tuple[str, ...]
    kind: str
    mode: str  # "llm" | "extractive" (what the user was shown)
    model: str  # the model that ran ("" extractive)
    answer: str
    cited: tuple[tuple[str, str], ...]  # (paper id, abstract) per citation, in citation order
    abstained: bool
    fallback: str  # why a model's text was replaced by the extractive answer ("" none)
    first_token: float  # seconds to the model's first token (0 when no model ran)
    seconds: float
    load: float  # 1-minute load average when the answer finished
    raw: str = ""  # the model's text before the checker
    shown: tuple[tuple[str, str], ...] = ()  # (paper id, abstract) of the sources the model saw, numbered from 1

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict) -> "Record":
        row = dict(row)
        for key in ("papers", "facts"):
            row[key] = tuple(row.get(key) or ())
        for key in ("cited", "shown"):
            row[key] = tuple(tuple(x) for x in row.get(key) or ())
        return cls(**row)


@dataclass(frozen=True)
class Scores:
    questions: int
    answered: int
    fact_recall: float
    all_facts: float  # questions whose answer has every key fact
    own_fact_recall: float  # key facts in the model's own unflagged sentences, quotes after them left out
    right_first: float
    cited_share: float
    precision: float
    raw_precision: float  # the model's own markers, before the checker (model runs only)
    unsupported: float
    not_covered: float  # covered questions answered "not covered" (the evidence gate)
    fallback: float  # model answers replaced by the extractive answer
    padded: float
    junk: float
    first_token_p50: float
    seconds_per_generated: float
    load: float

    def to_json(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def normalise(text: str) -> str:
    """Case, hyphens, dashes, thousands separators and spacing aside: ``normalise("Pre-trained 1,000")`` -> 'pretrained 1000'."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    text = re.sub(r"[\u2010-\u2015\-]", "", text)
    return " ".join(text.split())


def has_fact(answer: str, fact: str) -> bool:
    """The fact's words in the answer: verbatim (case, hyphens aside), or as the same stems in the same order
    ("caps the number of repeats" has "capping the number of repeats"); numbers must match exactly.

    >>> has_fact("UniMax caps the number of repeats per language.", "capping the number of repeats")
    True
    >>> has_fact("It solves 28.8% of the problems.", "28.8%"), has_fact("It solves 28% of them.", "28.8%")
    (True, False)
    """
    if normalise(fact) in normalise(answer):
        return True
    if any(c.isdigit() for c in fact):  # numbers only verbatim
        return False
    from chat.sentences import content_words

    wanted, have = content_words(normalise(fact)), content_words(normalise(answer))
    return bool(wanted) and any(have[i:i + len(wanted)] == wanted for i in range(len(have) - len(wanted) + 1))


def own_words(answer: str) -> str:
    """The answer before its key quotes, without the sentences the check flagged as unsupported.

    >>> own_words("It uses 48GB [1]. It runs on phones [unsupported]. From the abstract: QLoRA uses 48GB [1].")
    'It uses 48GB [1].'
    """
    from chat.answer import KEY_QUOTE_LABEL
    from chat.citations import UNSUPPORTED_FLAG
    from chat.sentences import split_sentences

    before = answer.split(KEY_QUOTE_LABEL, 1)[0]
    return " ".join(s for s in split_sentences(before) if UNSUPPORTED_FLAG not in s)


def claims(answer: str) -> list[tuple[str, tuple[int, ...]]]:
    """(claim, numbers cited) per sentence of the answer that states something (labels and notes left out)."""
    from chat.citations import cited_sentences, strip_markers
    from chat.sentences import content_words

    body = "\n".join(line for line in answer.splitlines() if not line.rstrip().endswith(":"))
    return [(strip_markers(s), n) for s, n in cited_sentences(body) if len(content_words(strip_markers(s))) >= 3]


def score(records: Sequence[Record], vectors) -> Scores:
    """The figures over ``records`` (covered questions; uncovered ones only count toward abstention elsewhere)."""
    covered = [r for r in records if r.papers]
    answered = [r for r in covered if not r.abstained]
    facts = [(r, f) for r in answered for f in r.facts]
    judged = [_judge(r, vectors) for r in answered]
    cited = sum(j[0] for j in judged)
    total = sum(j[1] for j in judged)
    supported = sum(j[2] for j in judged)
    raw = [_raw_precision(r, vectors) for r in answered if r.mode == "llm" or r.raw]
    generated = [r for r in answered if r.first_token > 0]
    return Scores(
        questions=len(covered), answered=len(answered),
        fact_recall=_share(sum(has_fact(r.answer, f) for r, f in facts), len(facts)),
        all_facts=_share(sum(all(has_fact(r.answer, f) for f in r.facts) for r in answered if r.facts),
                         sum(1 for r in answered if r.facts)),
        own_fact_recall=_share(sum(has_fact(own_words(r.answer), f) for r, f in facts), len(facts)),
        right_first=_share(sum(bool(r.cited) and r.cited[0][0] in r.papers for r in answered), len(answered)),
        cited_share=_share(cited, total), precision=_share(supported, cited),
        raw_precision=_share(sum(x[0] for x in raw), sum(x[1] for x in raw)),
        unsupported=_share(total - supported, total),
        not_covered=_share(len(covered) - len(answered), len(covered)),
        fallback=_share(sum(bool(r.fallback) for r in answered), sum(1 for r in answered if r.model)),
        padded=_share(sum(any(pid not in r.papers for pid, _ in r.cited) for r in answered), len(answered)),
        junk=_share(sum(is_junk(r.answer) for r in answered), len(answered)),
        first_token_p50=statistics.median([r.first_token for r in generated]) if generated else 0.0,
        seconds_per_generated=statistics.fmean([r.seconds for r in generated]) if generated else 0.0,
        load=statistics.fmean([r.load for r in records]) if records else 0.0)


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _judge(record: Record, vectors) -> tuple[int, int, int]:
    """(cited claims, claims, cited claims a cited source supports) of one answer's final text."""
    from chat.sentences import split_sentences
    from chat.support import judge

    cited = total = supported = 0
    for claim, numbers in claims(record.answer):
        total += 1
        valid = [n for n in numbers if 1 <= n <= len(record.cited)]
        if not valid:
            continue
        cited += 1
        sources = [split_sentences(record.cited[n - 1][1]) for n in valid]
        supported += any(judge(claim, s, vectors).supported for s in sources)
    return cited, total, supported


def _raw_precision(record: Record, vectors) -> tuple[int, int]:
    """(cited claims a cited source supports, cited claims) of the model's own text, sources as it saw them."""
    from chat.sentences import split_sentences
    from chat.support import judge

    good = n_cited = 0
    for claim, numbers in claims(record.raw):
        valid = [n for n in numbers if 1 <= n <= len(record.shown)]
        if not numbers:
            continue
        n_cited += 1
        good += any(judge(claim, split_sentences(record.shown[n - 1][1]), vectors).supported for n in valid)
    return good, n_cited
