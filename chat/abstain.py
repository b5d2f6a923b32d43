"""The evidence gate: when the retrieved papers do not cover the question, say so and list the nearest ones.

"Not covered" is decided here, before any generation, from three signals of the top papers:

- ``dense``: the best cosine between the question and a retrieved chunk (what it is about);
- ``coverage``: the share of the question's words found in one top paper, each word weighted
  by how rare it is in the index (so "model", "training" count little and "warmup", "LAMB"
  a lot), with hyphens, case and inflection normalised ("pre-trained" = "pretrained");
- ``names``: the share of the named methods, models and datasets of the question (LAMB,
  Swin Transformer, GPT-4; ``chat.subject.names``) that one top paper mentions at all.

A question about a method the papers never name, or only mention in passing, fails the
last two even when its topic is near. Long questions are measured sentence by sentence
for ``dense`` (their best-matching sentence) so that length does not decide. The answer
abstains when ``dense + coverage_weight * coverage + names_weight * names`` is below
``threshold``; the weights and threshold were calibrated on training questions only
(``python -m benchmarks.calibrate abstention``; benchmarks/RESULTS.md, "Abstention").

>>> from ingest.records import make_paper
>>> paper = make_paper(raw_id="2305.14314", title="QLoRA", abstract="QLoRA finetunes pre-trained 65B models on one GPU.")
>>> ev = measure("How do I bake sourdough bread?", [(paper, 0.08)])
>>> ev.coverage, ev.names, decide(ev)
(0.0, 1.0, True)
>>> ev = measure("How does QLoRA finetune pretrained 65B models?", [(paper, 0.71)])
>>> ev.coverage, ev.names, decide(ev)
(1.0, 1.0, False)
>>> measure("How does the LAMB optimizer finetune models?", [(paper, 0.45)]).names
0.0
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from chat.sentences import STOPWORDS, display_title, split_sentences
from chat.subject import names as named
from chat.text import stem
from ingest.records import Paper

_COMPOUND = re.compile(r"[^\W_]+(?:[-\u2010\u2011\u2013/][^\W_]+)+")  # pre-trained, chain-of-thought, w4a4
_WORD = re.compile(r"[^\W_]+")
Rarity = Callable[[Sequence[str]], Mapping[str, float]]  # index terms -> inverse document frequency


@dataclass(frozen=True)
class AbstainConfig:
    """Calibrated thresholds (benchmarks/RESULTS.md, "Abstention"); ``enabled=False`` never abstains."""

    threshold: float = 0.599
    coverage_weight: float = 0.25
    names_weight: float = 0.0
    top_papers: int = 3  # coverage and names are measured on this many top papers
    long_sentences: int = 3  # a question of more sentences is scored by its best sentence for ``dense``
    nearest: int = 3  # papers listed when abstaining
    enabled: bool = True


@dataclass(frozen=True)
class Evidence:
    dense: float  # best cosine of the question with a retrieved chunk
    coverage: float  # rarity-weighted share of the question's words found in one top paper
    names: float  # share of the question's named methods/models found in one top paper (1.0: it names none)
    support: float  # dense + coverage_weight * coverage + names_weight * names

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in vars(self).items()}


def units(text: str) -> list[tuple[str, ...]]:
    """The question's content words as stems; a hyphenated compound is one unit of its parts.

    >>> units("Why are pre-trained LLMs so chatty?")
    [('pre', 'train'), ('llm',), ('chatti',)]
    """
    text = unicodedata.normalize("NFKC", text).lower()
    found: list[tuple[str, ...]] = []
    spans = [(m.start(), m.end()) for m in _COMPOUND.finditer(text)]
    for m in _WORD.finditer(text):
        inside = next((s for s in spans if s[0] <= m.start() < s[1]), None)
        if inside is not None:
            if m.start() == inside[0]:
                parts = tuple(_stem(w) for w in _WORD.findall(text[inside[0]:inside[1]]))
                parts = tuple(p for p in parts if p)
                if parts:
                    found.append(parts)
            continue
        word = _stem(m.group())
        if word:
            found.append((word,))
    return list(dict.fromkeys(found))


def _stem(word: str) -> str:
    return "" if word in STOPWORDS or len(word) < 2 and not word.isdigit() else stem(word)


def vocabulary(text: str) -> set[str]:
    """Every stem of ``text``, plus each hyphenated compound joined ('pre-trained' -> 'pretrain')."""
    text = unicodedata.normalize("NFKC", text).lower()
    vocab = {stem(w) for w in _WORD.findall(text)}
    vocab |= {stem("".join(_WORD.findall(m.group()))) for m in _COMPOUND.finditer(text)}
    return vocab


def _found(unit: tuple[str, ...], vocab: set[str]) -> bool:
    return stem("".join(unit)) in vocab or all(p in vocab for p in unit)


def coverage(query_units: Sequence[tuple[str, ...]], vocab: set[str], weight: Mapping[str, float]) -> float:
    """Rarity-weighted share of ``query_units`` found in ``vocab`` (a paper's :func:`vocabulary`)."""
    total = sum(weight.get(_key(u), 1.0) for u in query_units)
    if not total:
        return 0.0
    return sum(weight.get(_key(u), 1.0) for u in query_units if _found(u, vocab)) / total


def _key(unit: tuple[str, ...]) -> str:
    return unit[0] if len(unit) == 1 else stem("".join(unit))


def _flat(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def name_share(query_names: Sequence[str], paper_text: str) -> float:
    """Share of ``query_names`` that ``paper_text`` mentions (case, spaces, hyphens and plural 's' aside)."""
    if not query_names:
        return 1.0
    flat = _flat(paper_text)
    wanted = [_flat(n[:-1] if n.endswith("s") and n[:-1].isupper() else n) for n in query_names]
    return sum(1 for w in wanted if w and w in flat) / len(wanted)


def measure(query: str, papers: Sequence[tuple[Paper, float]], config: AbstainConfig = AbstainConfig(),
            rarity: Rarity | None = None) -> Evidence:
    """Evidence for ``query`` from (paper, dense cosine) pairs, best first; ``rarity`` gives term weights."""
    if not papers:
        return Evidence(0.0, 0.0, 0.0, 0.0)
    dense = max(float(d) for _, d in papers)
    query_units = units(query)
    keys = list(dict.fromkeys(_key(u) for u in query_units))
    weight = dict(rarity(keys)) if rarity is not None else {}
    query_names = named(query)
    best_cov, best_names = 0.0, 0.0
    for paper, _ in papers[:config.top_papers]:
        text = f"{paper.title} {paper.abstract}"
        best_cov = max(best_cov, coverage(query_units, vocabulary(text), weight))
        best_names = max(best_names, name_share(query_names, text))
    support = dense + config.coverage_weight * best_cov + config.names_weight * best_names
    return Evidence(dense, best_cov, best_names, support)


def idf_weights(document_frequency: Callable[[str], int], papers: int) -> Rarity:
    """A :data:`Rarity` from an index's document frequencies: BM25's idf, so a term in every paper weighs ~0."""
    def rarity(terms: Sequence[str]) -> dict[str, float]:
        return {t: math.log1p((papers - (df := document_frequency(t)) + 0.5) / (df + 0.5)) for t in terms}
    return rarity


def decide(evidence: Evidence, config: AbstainConfig = AbstainConfig()) -> bool:
    """True when the evidence is too weak to answer from."""
    return config.enabled and evidence.support < config.threshold


def abstention_text(papers: Sequence[Paper], config: AbstainConfig = AbstainConfig(), filters=None,
                    matching: int | None = None, indexed: int | None = None) -> str:
    """What the user reads instead of an answer: the verdict, then the nearest papers.

    With ``filters`` (chat.retrieve.Filters) the verdict names them, so an empty result reads as
    what it is: ``matching`` papers pass them, ``indexed`` are in the index.

    >>> from chat.retrieve import Filters
    >>> abstention_text([], filters=Filters(year_min=2030, year_max=2030), matching=0, indexed=180)
    'No indexed paper matches: year 2030–2030. Widen or clear the filters to search all 180 indexed papers.'
    """
    scope = filters.describe() if filters is not None else ""
    if not papers:
        if scope and indexed != 0:
            every = f"all {indexed} indexed papers" if indexed else "every indexed paper"
            return f"No indexed paper matches: {scope}. Widen or clear the filters to search {every}."
        return "No paper is indexed yet."
    if scope and matching == 1:
        head = f"The only indexed paper matching {scope} does not cover this question."
    elif scope:
        count = f"{matching} " if matching is not None else ""
        head = f"The {count}indexed papers matching {scope} do not cover this question."
    else:
        head = "The indexed papers do not cover this question."
    nearest = [f"- {display_title(p.title, p.abstract, p.paper_id)} ({p.url or p.paper_id})"
               for p in papers[:config.nearest]]
    return head + " The nearest papers are:\n" + "\n".join(nearest)
