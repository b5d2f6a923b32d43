"""Calibration of the answer path's two thresholds: when to abstain, and when a cited sentence is supported.

``abstention``: questions that should be answered (SciFact and PubMedQA training questions over
their own corpora, the covered seed questions, and with ``--own`` the calibration half of our
sets naming a sample paper and of our long research questions) against questions that should
not (the far out-of-domain questions on every index, the uncovered seed questions, and the
calibration half of our near-domain set). Each question is retrieved once and
``chat.abstain.measure`` gives its parts: (similarity, coverage, names) for the question and,
when it is long, each of its sentences. For each (coverage weight, names weight) the threshold
is the highest that keeps abstention within ``--target`` on every in-domain set; the weights
abstaining most on the other sets (their mean) win, and the threshold is then lowered midway to
the highest support it still catches (same catch, more margin in domain). The held-out halves
of our sets (``benchmarks.abstention.part``) are reported, never used to choose.

    python -m benchmarks.calibrate abstention --beir ../shared/data/scifact --beir ../shared/data/pubmedqa \
        --questions benchmarks/seed_questions.jsonl --ood benchmarks/ood_questions.txt --own --target 0.03

``support``: PubMedQA conclusions (the ``long_answer`` cut from each abstract), sentence by
sentence, against their own abstract (should pass) and the most similar other abstract
(should fail); the (min cosine, min overlap) pair with the best pass-minus-false-pass wins.

    python -m benchmarks.calibrate support --beir ../shared/data/pubmedqa --limit 250

>>> good, bad = [((0.7, 1.0, 0.0),), ((0.5, 0.8, 0.0),)], [((0.2, 0.3, 1.0),), ((0.6, 0.0, 1.0),)]
>>> choice = calibrate({"in": good}, {"out": bad}, 0.0, [(0.0, 0.0), (0.5, 0.0)])
>>> choice.weights, round(choice.threshold, 3), choice.ood["out"]
((0.5, 0.0), 0.75, 1.0)
>>> best_support([(0.8, 0.9), (0.3, 0.6)], [(0.2, 0.1), (0.6, 0.2)], cosines=(0.5, 0.7), overlaps=(0.5,))
(0.7, 0.5, 1.0, 0.0)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.answers import DEFAULT_CACHE, beir_questions, read_lines, read_questions, seed_index

WEIGHTS = tuple((round(a, 2), round(b, 2)) for a in np.arange(0.0, 0.81, 0.05) for b in np.arange(0.0, 0.41, 0.05))
Features = list[tuple[float, float]]  # (cosine, overlap) per sentence, for ``support``
Parts = list[tuple[tuple[float, float, float], ...]]  # per question: (similarity, coverage, names) per part


@dataclass(frozen=True)
class Choice:
    weights: tuple[float, float]  # (coverage weight, names weight)
    threshold: float
    in_domain: dict[str, float]  # abstention rate per in-domain set
    ood: dict[str, float]  # abstention rate per set that should abstain

    def to_json(self) -> dict:
        return {"coverage_weight": self.weights[0], "names_weight": self.weights[1],
                "threshold": round(self.threshold, 4),
                "abstention_in_domain": {k: round(v, 4) for k, v in self.in_domain.items()},
                "abstention_ood": {k: round(v, 4) for k, v in self.ood.items()}}


def supports(parts: Parts, weights: tuple[float, float]) -> np.ndarray:
    """Each question's support: its best part's ``similarity + a * coverage + b * names`` (infinite for a
    part the names rule answers, ``AbstainConfig.named_covered``)."""
    from chat.abstain import AbstainConfig

    a, b, rule, c = *weights, AbstainConfig().named_covered, AbstainConfig().absent_weight
    return np.array([max(np.inf if rule(p) else p[0] + a * p[1] + b * p[2] - c * _absent(p) for p in question)
                     for question in parts])


def _absent(part: tuple[float, ...]) -> float:
    return part[3] if len(part) > 3 else 0.0  # signals cached before the absent-name signal have three parts


def rate(parts: Parts, weights: tuple[float, float], threshold: float) -> float:
    support = supports(parts, weights)
    return float((support < threshold).mean()) if len(support) else 0.0


def calibrate(in_domain: dict[str, Parts], ood: dict[str, Parts], target: float = 0.05,
              weights: Sequence[tuple[float, float]] = WEIGHTS, allow: dict[str, float] | None = None) -> Choice:
    """The weights and threshold abstaining most out of domain with at most ``target`` in domain on every set
    (``allow`` gives some sets another limit)."""
    allow = allow or {}
    best = None
    for w in weights:
        threshold = min(_quantile_floor(supports(f, w), allow.get(k, target)) for k, f in in_domain.items())
        score = float(np.mean([rate(f, w, threshold) for f in ood.values()]))
        if best is None or score > best[0] + 1e-9:
            best = (score, w, threshold)
    _, w, threshold = best
    caught = [x for f in ood.values() for x in supports(f, w) if x < threshold]
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


def abstention_features(index: str, questions: Sequence[str], k: int = 5) -> Parts:
    """The evidence parts of each question against the index at ``index``, as the answer path measures them."""
    from chat.abstain import AbstainConfig, measure, rarity_of
    from chat.retrieve import Retriever
    from chat.sentences import SentenceVectors
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    embedder = Embedder()
    retriever = Retriever(Store.open(StoreConfig(path=index), embedder.name, embedder.dim), embedder,
                          keyword_dir=tempfile.mkdtemp(prefix="calibrate-kw-"))
    vectors, rarity = SentenceVectors(embedder), rarity_of(retriever)
    out = []
    for question in questions:
        pairs = [(h.paper, h.dense) for h in retriever.search(question, k=k)]
        out.append(measure(question, pairs, AbstainConfig(), rarity, vectors).parts or ((0.0, 0.0, 0.0, 0.0),))
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
    ab.add_argument("--own", action="store_true", help="add our sets (benchmarks/questions): calibration "
                                                        "halves to choose, held-out halves reported")
    ab.add_argument("--target", type=float, default=0.03, help="most in-domain abstention allowed per set")
    ab.add_argument("--allow", action="append", default=[], metavar="SET=RATE",
                    help="another in-domain limit for one set, e.g. scifact=0.10 (claims whose entities no "
                         "retrieved paper mentions)")
    ab.add_argument("--features", help="cache of the measured parts (JSON): written on first use, then read")
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
    choice, held = run_abstention(args)
    print(json.dumps({**choice.to_json(), "held_out": {k: round(v, 4) for k, v in held.items()}}, indent=2))
    return 0


def run_abstention(args: argparse.Namespace) -> tuple[Choice, dict[str, float]]:
    """The choice, and the abstention rate it gives on the held-out half of each of our sets."""
    sets = _cached(args.features, lambda: measure_sets(args))
    in_domain = {k[3:]: v for k, v in sets.items() if k.startswith("in:") and not k.endswith("/held")}
    ood = {k[4:]: v for k, v in sets.items() if k.startswith("out:") and not k.endswith("/held")}
    allow = {k: float(v) for k, v in (item.split("=", 1) for item in args.allow)}
    choice = calibrate(in_domain, ood, args.target, allow=allow)
    held = {k.split(":", 1)[1]: rate(v, choice.weights, choice.threshold) for k, v in sets.items()
            if k.endswith("/held")}
    return choice, held


def measure_sets(args: argparse.Namespace) -> dict[str, Parts]:
    """Parts of every question, keyed 'in:NAME' (should answer) or 'out:NAME' (should abstain)."""
    from benchmarks.abstention import part, read_set
    from models.embedder import Embedder

    embedder = Embedder()
    ood_questions = read_lines(args.ood)
    sets: dict[str, Parts] = {}
    for directory in args.beir:
        name = os.path.basename(os.path.normpath(directory))
        index, questions = beir_questions(directory, args.split, embedder, args.index_cache)
        sets[f"in:{name}"] = abstention_features(index, [q for q, _ in questions])
        sets[f"out:ood@{name}"] = abstention_features(index, ood_questions)
    index = seed_index(embedder, args.index_cache)
    if args.questions:
        rows = read_questions(args.questions)
        sets["in:seeds"] = abstention_features(index, [q for q, gold in rows if gold])
        sets["out:ood@seeds"] = abstention_features(index, ood_questions)
        sets["out:uncovered@seeds"] = abstention_features(index, [q for q, gold in rows if not gold])
    if args.own:
        for file, side, name in (("named_papers.jsonl", "in", "named"), ("long_questions.jsonl", "in", "long"),
                                 ("near_domain.txt", "out", "near")):
            questions = [q for q, _ in read_set(file)]
            for half in ("cal", "held"):
                sets[f"{side}:{name}/{half}"] = abstention_features(index, [q for q in questions if part(q) == half])
    return sets


def _cached(path: str | None, compute):
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            return {k: [tuple(tuple(p) for p in q) for q in v] for k, v in json.load(fh).items()}
    value = compute()
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(value, fh)
    return value


if __name__ == "__main__":
    sys.exit(main())
