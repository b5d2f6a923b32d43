"""Calibration of the answer path's two thresholds: when to abstain, and when a cited sentence is supported.

``abstention``: in-domain questions (their own corpus indexed) against out-of-domain ones.
Each question is retrieved once and ``chat.abstain.measure`` gives (dense, coverage). For
each coverage weight, the threshold is the highest that keeps in-domain abstention within
``--target`` on every in-domain set; the weight abstaining most out of domain (mean over
the sets) wins, and its threshold is then lowered to midway to the highest out-of-domain
support it still catches, so that nothing is lost out of domain and in-domain gains margin.

    python -m benchmarks.calibrate abstention --beir ../shared/data/scifact --beir ../shared/data/pubmedqa \\
        --questions benchmarks/seed_questions.jsonl --ood benchmarks/ood_questions.txt

``support``: PubMedQA conclusions (the ``long_answer`` cut from each abstract), sentence by
sentence, against their own abstract (should pass) and the most similar other abstract
(should fail); the (min cosine, min overlap) pair with the best pass-minus-false-pass wins.

    python -m benchmarks.calibrate support --beir ../shared/data/pubmedqa --limit 250

>>> choice = calibrate({"in": [(0.7, 1.0), (0.5, 0.8)]}, {"out": [(0.2, 0.3), (0.6, 0.0)]}, 0.0, (0.0, 0.5))
>>> choice.weight, round(choice.threshold, 3), choice.ood["out"]
(0.5, 0.75, 1.0)
>>> best_support([(0.8, 0.9), (0.3, 0.6)], [(0.2, 0.1), (0.6, 0.2)], cosines=(0.5, 0.7), overlaps=(0.5,))
(0.7, 0.5, 1.0, 0.0)
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
Features = list[tuple[float, float]]  # (dense, coverage) or (cosine, overlap) per item


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


def _support(features: Features, weight: float) -> np.ndarray:
    return np.array([d + weight * c for d, c in features])


def rate(features: Features, weight: float, threshold: float) -> float:
    support = _support(features, weight)
    return float((support < threshold).mean()) if len(support) else 0.0


def calibrate(in_domain: dict[str, Features], ood: dict[str, Features], target: float = 0.05,
              weights: Sequence[float] = WEIGHTS) -> Choice:
    """The (weight, threshold) abstaining most out of domain with at most ``target`` in domain on every set."""
    best = None
    for w in weights:
        threshold = min(_quantile_floor(_support(f, w), target) for f in in_domain.values())
        score = float(np.mean([rate(f, w, threshold) for f in ood.values()]))
        if best is None or score > best[0] + 1e-9:
            best = (score, w, threshold)
    _, w, threshold = best
    caught = [x for f in ood.values() for x in _support(f, w) if x < threshold]
    if caught:  # lower the threshold towards the out-of-domain questions it catches: same catch, more margin
        threshold = float(threshold + max(caught)) / 2
    return Choice(w, threshold, {k: rate(f, w, threshold) for k, f in in_domain.items()},
                  {k: rate(f, w, threshold) for k, f in ood.items()})


def _quantile_floor(values: np.ndarray, target: float) -> float:
    """The largest threshold below which at most ``target`` of ``values`` fall."""
    ordered = np.sort(values)
    allowed = int(np.floor(target * len(ordered)))
    return float(ordered[allowed]) if allowed < len(ordered) else float(ordered[-1]) + 1e-6


def best_support(good: Features, bad: Features, cosines: Sequence[float] = tuple(np.arange(0.4, 0.81, 0.05)),
                 overlaps: Sequence[float] = tuple(np.arange(0.2, 0.81, 0.05))) -> tuple[float, float, float, float]:
    """(min cosine, min overlap, pass rate of good, pass rate of bad) maximising the difference of the rates."""
    g, b = np.array(good), np.array(bad)
    best = None
    for c in cosines:
        for o in overlaps:
            tp = float(((g[:, 0] >= c) | (g[:, 1] >= o)).mean())
            fp = float(((b[:, 0] >= c) | (b[:, 1] >= o)).mean())
            if best is None or tp - fp > best[2] - best[3] + 1e-9:
                best = (round(float(c), 3), round(float(o), 3), tp, fp)
    return best


def abstention_features(index: str, questions: Sequence[str], k: int = 5) -> Features:
    """(dense, coverage) of each question against the index at ``index``."""
    from chat.abstain import measure
    from chat.retrieve import Retriever
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    embedder = Embedder()
    retriever = Retriever(Store.open(StoreConfig(path=index), embedder.name, embedder.dim), embedder)
    out = []
    for question in questions:
        evidence = measure(question, [(h.paper, h.dense) for h in retriever.search(question, k=k)])
        out.append((evidence.dense, evidence.coverage))
    return out


def support_features(directory: str, limit: int) -> tuple[Features, Features]:
    """(cosine, overlap) of each conclusion sentence with its own abstract, and with the nearest other one."""
    from benchmarks.beir import iter_corpus
    from chat.sentences import SentenceVectors, overlap, split_sentences
    from models.embedder import Embedder

    embedder = Embedder()
    vectors = SentenceVectors(embedder)
    corpus = {str(r["_id"]): r["text"] for r in iter_corpus(directory)}
    ids = list(corpus)
    documents = embedder.embed([corpus[i] for i in ids])
    good, bad = [], []
    for row in _long_answers(directory)[:limit]:
        own = ids.index(row["_id"])
        other = ids[next(int(j) for j in np.argsort(-(documents @ documents[own])) if int(j) != own)]
        for claim in split_sentences(row["metadata"]["long_answer"]):
            for out, abstract in ((good, corpus[row["_id"]]), (bad, corpus[other])):
                sentences = split_sentences(abstract)
                matrix = vectors([claim] + sentences)
                out.append((float(np.max(matrix[1:] @ matrix[0])), overlap(claim, abstract)))
    return good, bad


def _long_answers(directory: str) -> list[dict]:
    with open(os.path.join(directory, "queries.jsonl"), encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [r for r in rows if (r.get("metadata") or {}).get("long_answer")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibrate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ab = sub.add_parser("abstention")
    ab.add_argument("--beir", action="append", default=[], help="BEIR dataset (in-domain: its own corpus)")
    ab.add_argument("--split", default="train")
    ab.add_argument("--questions", help="JSON lines {question, paper_id} over the seed corpus")
    ab.add_argument("--ood", required=True, help="out-of-domain questions, one per line")
    ab.add_argument("--target", type=float, default=0.05, help="most in-domain abstention allowed per set")
    ab.add_argument("--index-cache", default=str(DEFAULT_CACHE))
    su = sub.add_parser("support")
    su.add_argument("--beir", required=True, help="a BEIR dataset whose queries carry metadata.long_answer")
    su.add_argument("--limit", type=int, default=250)
    args = parser.parse_args(argv)
    if args.command == "support":
        good, bad = support_features(args.beir, args.limit)
        c, o, tp, fp = best_support(good, bad)
        print(json.dumps({"min_cosine": c, "min_overlap": o, "supported_own": round(tp, 4),
                          "supported_other": round(fp, 4), "sentences": len(good)}))
        return 0
    print(json.dumps(run_abstention(args).to_json(), indent=2))
    return 0


def run_abstention(args: argparse.Namespace) -> Choice:
    from models.embedder import Embedder

    embedder = Embedder()
    ood_questions = read_lines(args.ood)
    in_domain, ood = {}, {}
    for directory in args.beir:
        name = os.path.basename(os.path.normpath(directory))
        index, questions = beir_questions(directory, args.split, embedder, args.index_cache)
        in_domain[name] = abstention_features(index, [q for q, _ in questions])
        ood[f"ood@{name}"] = abstention_features(index, ood_questions)
    if args.questions:
        index = seed_index(embedder, args.index_cache)
        rows = read_questions(args.questions)
        in_domain["seeds"] = abstention_features(index, [q for q, gold in rows if gold])
        ood["ood@seeds"] = abstention_features(index, ood_questions)
        ood["uncovered@seeds"] = abstention_features(index, [q for q, gold in rows if not gold])
    return calibrate(in_domain, ood, args.target)


if __name__ == "__main__":
    sys.exit(main())
