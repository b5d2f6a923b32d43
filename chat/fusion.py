"""Fusing the dense and the keyword ranking of the same papers into one score.

Two methods. ``convex``: a weighted sum of the raw cosine and the keyword share (BM25
over the best score the query could reach); both are absolute, so the fused score
means the same across queries (useful for abstention), and on SciFact it ranks
better than min-max or z-score normalisation per query. ``rrf``: reciprocal rank
fusion, which only looks at ranks. A paper that the dense side did not retrieve
gets the lowest cosine that was retrieved (an upper bound on its own).

>>> dense = {"a": 0.62, "b": 0.55, "c": 0.20}
>>> keyword = {"a": 0.0, "b": 0.5, "c": 0.4, "d": 0.9}
>>> {p: round(s, 3) for p, s in sorted(convex(dense, keyword, dense_weight=0.5).items())}
{'a': 0.31, 'b': 0.525, 'c': 0.3, 'd': 0.55}
>>> max(rrf([["a", "b", "c"], ["d", "b", "c"]], [1.0, 1.0], k=60).items(), key=lambda kv: kv[1])[0]
'b'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def convex(dense: Mapping[str, float], keyword: Mapping[str, float], dense_weight: float) -> dict[str, float]:
    """``w * cosine + (1 - w) * keyword`` over both candidate sets (keyword must cover them all)."""
    floor = min(dense.values(), default=0.0)
    return {pid: dense_weight * dense.get(pid, floor) + (1 - dense_weight) * keyword.get(pid, 0.0)
            for pid in {**dense, **keyword}}


def rrf(rankings: Sequence[Sequence[str]], weights: Sequence[float], k: float) -> dict[str, float]:
    """Sum over rankings of ``weight / (k + rank)``, ranks counted from 1."""
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, pid in enumerate(ranking, start=1):
            fused[pid] = fused.get(pid, 0.0) + weight / (k + rank)
    return fused
