"""BEIR-layout datasets (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv) and the standard ranking metrics.

Metrics follow trec_eval as BEIR reports them: nDCG with linear graded gains (a
qrel of 2 counts twice a qrel of 1; 0 is not relevant), recall as the share of
relevant documents in the top k, MRR as the reciprocal rank of the first relevant
document in the top k.

>>> qrels = {"q1": {"d1": 1, "d3": 2}}
>>> m = evaluate({"q1": ["d3", "d2", "d1"]}, qrels)
>>> round(m.ndcg10, 4), m.recall10, m.mrr10
(0.9502, 1.0, 1.0)
>>> ndcg_at(["d2", "d1"], {"d1": 1}, 10) == 1 / math.log2(3)
True
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BeirDataset:
    """One split of a BEIR dataset: the queries that have judgements, and the judgements."""

    name: str
    directory: str
    split: str
    queries: dict[str, str]  # query id -> text, in file order
    qrels: dict[str, dict[str, int]]  # query id -> {corpus id: grade}
    # Queries whose judged abstract holds no evidence for them: SciFact's "not enough info" claims, whose
    # metadata is empty where the others map each abstract to its rationale sentences.
    without_evidence: frozenset[str] = frozenset()

    @property
    def corpus_path(self) -> str:
        return os.path.join(self.directory, "corpus.jsonl")


@dataclass(frozen=True)
class Metrics:
    ndcg10: float
    recall10: float
    recall100: float
    mrr10: float
    queries: int


def load_beir(directory: str, split: str = "test") -> BeirDataset:
    """Read a BEIR directory; ValueError when a file is missing or the split has no judged queries."""
    qrels_path = os.path.join(directory, "qrels", f"{split}.tsv")
    for path in (os.path.join(directory, "corpus.jsonl"), os.path.join(directory, "queries.jsonl"), qrels_path):
        if not os.path.isfile(path):
            raise ValueError(f"{path} not found: a BEIR directory has corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv")
    qrels = read_qrels(qrels_path)
    queries, rationale = {}, {}
    with open(os.path.join(directory, "queries.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if str(row["_id"]) in qrels:
                    queries[str(row["_id"])] = row["text"]
                    rationale[str(row["_id"])] = _has_rationale(row.get("metadata"))
    if not queries:
        raise ValueError(f"no query in {directory}/queries.jsonl has judgements in {qrels_path}")
    name = os.path.basename(os.path.normpath(directory))
    # only a dataset that gives rationales (SciFact) says which queries have none
    without = frozenset(q for q, r in rationale.items() if r is False) if any(rationale.values()) else frozenset()
    return BeirDataset(name, directory, split, queries, {q: qrels[q] for q in queries}, without)


def _has_rationale(metadata) -> bool | None:
    """True for SciFact-style metadata ({doc id: [{"sentences": […], "label": …}]}), False for an empty one,
    None for any other (PubMedQA's long answer and decision say nothing about it)."""
    if metadata == {}:
        return False
    if isinstance(metadata, dict) and metadata and all(
            isinstance(v, list) and v and all(isinstance(e, dict) and "sentences" in e for e in v)
            for v in metadata.values()):
        return True
    return None


def read_qrels(path: str) -> dict[str, dict[str, int]]:
    """query id -> {corpus id: grade}; a header row (query-id, corpus-id, score) is skipped."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
                continue  # header or blank line
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def iter_corpus(directory: str) -> Iterator[dict]:
    """The corpus rows as dicts with ``_id``, ``title`` and ``text``."""
    with open(os.path.join(directory, "corpus.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def ndcg_at(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    gains = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    if not ideal:
        return 0.0
    found = sum(max(judged.get(doc, 0), 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    return found / ideal


def recall_at(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if judged.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def evaluate(runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> Metrics:
    """Mean metrics over the judged queries; a query missing from ``runs`` scores zero."""
    judged = [q for q in qrels if any(g > 0 for g in qrels[q].values())]
    if not judged:
        raise ValueError("no query has a relevant document")
    n = len(judged)

    def mean(metric, k: int) -> float:
        return sum(metric(runs.get(q, ()), qrels[q], k) for q in judged) / n

    return Metrics(mean(ndcg_at, 10), mean(recall_at, 10), mean(recall_at, 100), mean(mrr_at, 10), n)
