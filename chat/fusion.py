"""Fusing the dense and the keyword ranking of the same papers into one score.

Two methods: reciprocal rank fusion (only ranks count, robust to score scales) and a
convex combination of scores normalised per query (keeps how far apart the scores
are). A paper missing from one side's candidates gets that side's worst value.

>>> dense = {"a": 0.62, "b": 0.55, "c": 0.20}
>>> keyword = {"b": 11.0, "c": 9.0}
>>> sorted(rrf([list(dense), list(keyword)], [1.0, 1.0], k=60).items(), key=lambda kv: -kv[1])[0][0]
'b'
>>> {p: round(s, 3) for p, s in convex(dense, keyword, dense_weight=0.5).items()}
{'a': 0.5, 'b': 0.917, 'c': 0.0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def rrf(rankings: Sequence[Sequence[str]], weights: Sequence[float], k: float) -> dict[str, float]:
    """Sum over rankings of ``weight / (k + rank)``, ranks counted from 1."""
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, pid in enumerate(ranking, start=1):
            fused[pid] = fused.get(pid, 0.0) + weight / (k + rank)
    return fused


def convex(dense: Mapping[str, float], keyword: Mapping[str, float], dense_weight: float) -> dict[str, float]:
    """``w * minmax(dense) + (1 - w) * minmax(keyword)`` over the union of both candidate sets."""
    d, kw = _minmax(dense), _minmax(keyword)
    return {pid: dense_weight * d.get(pid, 0.0) + (1 - dense_weight) * kw.get(pid, 0.0)
            for pid in {**dense, **keyword}}


def _minmax(scores: Mapping[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    span = high - low
    return {pid: (s - low) / span if span > 0 else 1.0 for pid, s in scores.items()}
