"""Calibrate when answers abstain: in-domain questions (their corpus indexed) against out-of-domain ones.

For every question the retriever runs once and ``chat.abstain.measure`` gives its
evidence (best dense cosine, coverage of the question's content words). For each
coverage weight the threshold is the highest one that keeps in-domain abstention at or
below ``--target`` on every in-domain set; the weight whose threshold abstains on the
most out-of-domain questions (averaged over the indexes) wins.

    python -m benchmarks.abstention --beir ../shared/data/scifact --beir ../shared/data/pubmedqa \\
        --questions benchmarks/seed_questions.jsonl --ood benchmarks/ood_questions.txt

>>> sets = {"in": [(0.7, 1.0), (0.5, 0.8)]}, {"out": [(0.2, 0.3), (0.6, 0.0)]}
>>> choice = calibrate(*sets, target=0.0, weights=(0.0, 0.5))
>>> choice.weight, round(choice.threshold, 3), choice.ood["out"]
(0.5, 0.9, 1.0)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.answers import DEFAULT_CACHE, beir_questions, read_lines, read_questions, seed_index

WEIGHTS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0)
Features = list[tuple[float, float]]  # (dense, coverage) per question


@dataclass(frozen=True)
class Choice:
    weight: float
    threshold: float
    in_domain: dict[str, float]  # abstention rate per in-domain set
    ood: dict[str, float]  # abstention rate per out-of-domain set

    def to_json(self) -> dict:
        return {"coverage_weight": self.weight, "threshold": round(self.threshold, 4),
                "abstention_in_domain": {k: round(v, 4) for k, v in self.in_domain.items()},
                "abstention_ood": {k: round(v, 4) for k, v in self.ood.items()}}


def rates(features: Features, weight: float, threshold: float) -> float:
    support = np.array([d + weight * c for d, c in features])
    return float((support < threshold).mean()) if len(support) else 0.0


def calibrate(in_domain: dict[str, Features], ood: dict[str, Features], target: float = 0.05,
              weights: Sequence[float] = WEIGHTS) -> Choice:
    """The (weight, threshold) that abstains most out of domain with at most ``target`` in domain on every set."""
    best = None
    for w in weights:
        # Largest threshold whose abstention stays within target on every in-domain set.
        threshold = min(_quantile_floor([d + w * c for d, c in f], target) for f in in_domain.values())
        score = float(np.mean([rates(f, w, threshold) for f in ood.values()]))
        if best is None or score > best[0] + 1e-9:
            best = (score, w, threshold)
    _, w, threshold = best
    return Choice(w, threshold, {k: rates(f, w, threshold) for k, f in in_domain.items()},
                  {k: rates(f, w, threshold) for k, f in ood.items()})


def _quantile_floor(values: list[float], target: float) -> float:
    """A threshold below which at most ``target`` of ``values`` fall."""
    ordered = sorted(values)
    allowed = int(np.floor(target * len(ordered)))  # questions that may abstain
    return ordered[allowed] if allowed < len(ordered) else ordered[-1] + 1e-6


def features(index: str, questions: Sequence[str], k: int = 5) -> Features:
    """(dense, coverage) of each question against the index at ``index``."""
    from chat.abstain import measure
    from chat.retrieve import Retriever
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    embedder = Embedder()
    retriever = Retriever(Store.open(StoreConfig(path=index), embedder.name, embedder.dim), embedder)
    out = []
    for question in questions:
        hits = retriever.search(question, k=k)
        evidence = measure(question, [(h.paper, h.dense) for h in hits])
        out.append((evidence.dense, evidence.coverage))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.abstention", description=__doc__.split("\n\n")[0])
    parser.add_argument("--beir", action="append", default=[], help="BEIR dataset (in-domain: its own corpus)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--questions", help="JSON lines {question, paper_id} over the seed corpus")
    parser.add_argument("--ood", required=True, help="out-of-domain questions, one per line")
    parser.add_argument("--target", type=float, default=0.05, help="most in-domain abstention allowed per set")
    parser.add_argument("--index-cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from models.embedder import Embedder

    embedder = Embedder()
    ood_questions = read_lines(args.ood)
    in_domain, ood = {}, {}
    for directory in args.beir:
        name = os.path.basename(os.path.normpath(directory))
        index, questions = beir_questions(directory, args.split, embedder, args.index_cache)
        in_domain[name] = features(index, [q for q, _ in questions])
        ood[f"ood@{name}"] = features(index, ood_questions)
    if args.questions:
        index = seed_index(embedder, args.index_cache)
        rows = read_questions(args.questions)
        in_domain["seeds"] = features(index, [q for q, gold in rows if gold])
        ood["ood@seeds"] = features(index, ood_questions)
        ood["uncovered@seeds"] = features(index, [q for q, gold in rows if not gold])
    choice = calibrate(in_domain, ood, args.target)
    print(json.dumps(choice.to_json(), indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
