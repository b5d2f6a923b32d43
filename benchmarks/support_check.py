"""Precision and recall of "supported" on labelled claim/source pairs: ``python -m benchmarks.support_check``.

The pairs (benchmarks/support_pairs.jsonl, see benchmarks/DATA.md) hold paraphrases and verbatim
claims that their source supports, and negations, antonyms, swapped numbers and names,
wrong-paper attributions, overgeneralisations that it does not. SciFact and PubMedQA sources
are referenced (``source_ref``), not copied: they are read from ``../shared/data``. Pairs are
split in two by a hash of the claim: thresholds are read on the ``dev`` half, and the ``test``
half reports what they give on pairs they were not read on.

    python -m benchmarks.support_check                    # before (the previous rule) and after, both halves
    python -m benchmarks.support_check --grid             # the threshold grid on the dev half
    python -m benchmarks.support_check --ablate           # also each contradiction check turned off in turn

>>> round(f1(PR(0.8, 0.5)), 4)
0.6154
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "benchmarks" / "support_pairs.jsonl"
SHARED = ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class Pair:
    claim: str
    source: str
    label: bool
    kind: str
    origin: str

    @property
    def half(self) -> str:
        return "dev" if int(hashlib.sha1(self.claim.encode()).hexdigest(), 16) % 2 == 0 else "test"


@dataclass(frozen=True)
class PR:
    precision: float
    recall: float


def f1(pr: PR) -> float:
    return 2 * pr.precision * pr.recall / (pr.precision + pr.recall) if pr.precision + pr.recall else 0.0


def load_pairs(path: Path = PAIRS, shared: Path = SHARED) -> list[Pair]:
    """The labelled pairs with every source's text filled in."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    wanted = {r["source_ref"] for r in rows if "source" not in r}
    corpora: dict[str, str] = {}
    for origin in {ref.split(":", 1)[0] for ref in wanted}:
        with open(shared / origin / "corpus.jsonl", encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)
                ref = f"{origin}:{doc['_id']}"
                if ref in wanted:
                    corpora[ref] = " ".join(x for x in (doc.get("title", ""), doc.get("text", "")) if x)
    return [Pair(r["claim"], r.get("source") or corpora[r["source_ref"]], bool(r["label"]), r["kind"], r["origin"])
            for r in rows]


def measure(pairs: Sequence[Pair], supported: Callable[[Pair], bool]) -> tuple[PR, dict[str, float]]:
    """Precision and recall of "supported", and per kind the share judged supported."""
    verdicts = [(p, supported(p)) for p in pairs]
    tp = sum(1 for p, v in verdicts if v and p.label)
    fp = sum(1 for p, v in verdicts if v and not p.label)
    fn = sum(1 for p, v in verdicts if not v and p.label)
    kinds: Counter[str] = Counter(p.kind for p in pairs)
    passed: Counter[str] = Counter(p.kind for p, v in verdicts if v)
    pr = PR(tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0)
    return pr, {k: passed[k] / n for k, n in sorted(kinds.items())}


def previous_rule(vectors) -> Callable[[Pair], bool]:
    """The check before this change: a sentence with cosine >= 0.70, or 35% of the claim's words in the source."""
    import numpy as np

    from chat.sentences import overlap, split_sentences

    def supported(pair: Pair) -> bool:
        sentences = split_sentences(pair.source) or [pair.source]
        matrix = vectors([pair.claim] + sentences)
        return float(np.max(matrix[1:] @ matrix[0])) >= 0.70 or overlap(pair.claim, pair.source) >= 0.35
    return supported


def current_rule(vectors, config=None) -> Callable[[Pair], bool]:
    from chat.sentences import split_sentences
    from chat.support import SupportConfig, judge

    config = config or SupportConfig()
    return lambda pair: judge(pair.claim, split_sentences(pair.source) or [pair.source], vectors, config).supported


def grid(pairs: Sequence[Pair], vectors) -> list[tuple[float, float, PR]]:
    """F1-ranked (min_cosine, min_overlap) on ``pairs``, contradiction checks on."""
    from chat.support import SupportConfig

    out = []
    for cosine in (0.55, 0.6, 0.62, 0.65, 0.7, 0.75):
        for words in (0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.01):
            pr, _ = measure(pairs, current_rule(vectors, replace(SupportConfig(), min_cosine=cosine, min_overlap=words)))
            out.append((cosine, words, pr))
    return sorted(out, key=lambda row: -f1(row[2]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.support_check", description=__doc__.split("\n")[0])
    parser.add_argument("--grid", action="store_true", help="print the threshold grid on the dev half")
    parser.add_argument("--ablate", action="store_true", help="also measure with each contradiction check off")
    args = parser.parse_args(argv)
    from chat.sentences import SentenceVectors
    from models.embedder import Embedder

    vectors = SentenceVectors(Embedder())
    pairs = load_pairs()
    halves = {"dev": [p for p in pairs if p.half == "dev"], "test": [p for p in pairs if p.half == "test"],
              "all": pairs}
    if args.grid:
        for cosine, words, pr in grid(halves["dev"], vectors)[:12]:
            print(f"cosine {cosine:.2f} words {words:.2f}: precision {pr.precision:.3f} recall {pr.recall:.3f} "
                  f"F1 {f1(pr):.3f}")
        return 0
    from chat.support import SupportConfig

    checks = ("numbers", "names", "negation", "antonyms", "quantities") if args.ablate else ()
    rules = [("before", previous_rule(vectors)), ("after", current_rule(vectors))]
    rules += [(f"no {c}", current_rule(vectors, replace(SupportConfig(), **{f"check_{c}": False}))) for c in checks]
    for name, rule in rules:
        for half, subset in halves.items():
            pr, kinds = measure(subset, rule)
            print(f"{name:<13} {half:<4} ({len(subset)} pairs): precision {pr.precision:.3f} recall {pr.recall:.3f} "
                  f"F1 {f1(pr):.3f}")
        print("        judged supported, by kind (all pairs): "
              + ", ".join(f"{k} {v:.0%}" for k, v in measure(pairs, rule)[1].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
