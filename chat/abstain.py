"""Abstention: when the retrieved papers do not cover the question, say so and list the nearest ones.

Evidence is measured by two signals of the retrieved papers: ``dense``, the best
cosine between the question and any chunk (Hit.dense), and ``coverage``, the largest
share of the question's content words that one top paper contains. The answer
abstains when ``dense + coverage_weight * coverage`` falls below ``threshold``;
both numbers were calibrated on SciFact and PubMedQA training questions (in-domain,
their own corpus indexed) against out-of-domain questions
(benchmarks/ood_questions.txt): see benchmarks/RESULTS.md, section "Abstention".

>>> from ingest.records import make_paper
>>> paper = make_paper(raw_id="2305.14314", title="QLoRA", abstract="QLoRA finetunes 65B models on one GPU.")
>>> ev = measure("How do I bake sourdough bread?", [(paper, 0.08)])
>>> ev.coverage, decide(ev)
(0.0, True)
>>> decide(measure("How does QLoRA finetune 65B models?", [(paper, 0.71)]))
False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chat.sentences import display_title, overlap
from ingest.records import Paper


@dataclass(frozen=True)
class AbstainConfig:
    """Calibrated thresholds (benchmarks/RESULTS.md, "Abstention"); ``enabled=False`` never abstains."""

    threshold: float = 0.599
    coverage_weight: float = 0.25
    top_papers: int = 3  # coverage is measured on this many top papers
    nearest: int = 3  # papers listed when abstaining
    enabled: bool = True


@dataclass(frozen=True)
class Evidence:
    dense: float  # best cosine of the question with a retrieved chunk
    coverage: float  # largest share of question content words found in one top paper
    support: float  # dense + coverage_weight * coverage

    def to_json(self) -> dict[str, float]:
        return {"dense": round(self.dense, 4), "coverage": round(self.coverage, 4), "support": round(self.support, 4)}


def measure(query: str, papers: Sequence[tuple[Paper, float]], config: AbstainConfig = AbstainConfig()) -> Evidence:
    """Evidence for ``query`` from (paper, dense cosine) pairs, best first."""
    if not papers:
        return Evidence(0.0, 0.0, 0.0)
    dense = max(float(d) for _, d in papers)
    coverage = max(overlap(query, f"{p.title} {p.abstract}") for p, _ in papers[:config.top_papers])
    return Evidence(dense, coverage, dense + config.coverage_weight * coverage)


def decide(evidence: Evidence, config: AbstainConfig = AbstainConfig()) -> bool:
    """True when the evidence is too weak to answer from."""
    return config.enabled and evidence.support < config.threshold


def abstention_text(papers: Sequence[Paper], config: AbstainConfig = AbstainConfig()) -> str:
    """What the user reads instead of an answer: the verdict, then the nearest papers."""
    head = "The indexed papers do not cover this question."
    nearest = [f"- {display_title(p.title, p.abstract, p.paper_id)} ({p.url or p.paper_id})"
               for p in papers[:config.nearest]]
    if not nearest:
        return head + " No paper is indexed yet."
    return head + " The nearest papers are:\n" + "\n".join(nearest)
