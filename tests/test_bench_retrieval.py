"""The retrieval benchmark: metrics against hand-computed values, and the command end to end."""

from __future__ import annotations

import json
import math
import os

import pytest

from benchmarks import retrieval
from benchmarks.beir import evaluate, load_beir, mrr_at, ndcg_at, read_qrels, recall_at
from ingest.store import Store, StoreConfig
from tests.conftest import SHARED

CORPUS = [
    {"_id": "2305.14314v2", "title": "QLoRA", "text": "QLoRA finetunes a 65B model on a single 48GB GPU by "
                                                      "backpropagating through a frozen 4-bit quantized model."},
    {"_id": "d-attn", "title": "Attention Is All You Need", "text": "The Transformer relies solely on attention, "
                                                                     "dispensing with recurrence and convolutions."},
    {"_id": "d-res", "title": "Deep Residual Learning", "text": "Residual connections ease the training of very "
                                                                 "deep convolutional networks for ImageNet."},
    {"_id": "2305.14314v1", "title": "QLoRA", "text": "An earlier version: finetuning 4-bit models."},  # merged
    {"_id": "d-bird", "title": "Bird migration", "text": "Migratory birds navigate using the geomagnetic field."},
    {"_id": "d-empty", "title": "No abstract", "text": ""},
]
QUERIES = [{"_id": "q1", "text": "finetuning quantized language models on one GPU"},
           {"_id": "q2", "text": "how do birds find their way when migrating"},
           {"_id": "q3", "text": "attention without recurrence"},
           {"_id": "q4", "text": "a query only in the train split"}]
QRELS = "query-id\tcorpus-id\tscore\nq1\t2305.14314v1\t2\nq2\td-bird\t1\nq3\td-attn\t1\nq3\td-res\t0\n"


@pytest.fixture()
def beir_dir(tmp_path):
    folder = tmp_path / "tinybeir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CORPUS))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    (folder / "qrels" / "test.tsv").write_text(QRELS)
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq4\td-res\t1\n")
    return folder


def test_graded_ndcg_matches_a_hand_computation():
    judged = {"a": 2, "b": 1, "c": 0}
    ranked = ["c", "b", "x", "a"]
    dcg = 1 / math.log2(3) + 2 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(ranked, judged, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at(ranked, judged, 2) == pytest.approx((1 / math.log2(3)) / idcg)
    assert recall_at(ranked, judged, 2) == 0.5 and recall_at(ranked, judged, 10) == 1.0
    assert mrr_at(ranked, judged, 10) == 0.5 and mrr_at(ranked, judged, 1) == 0.0


def test_evaluate_counts_missing_runs_as_zero():
    m = evaluate({"q1": ["a"]}, {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}})
    assert (m.queries, m.ndcg10, m.recall100, m.mrr10) == (2, 0.5, 0.5, 0.5)


def test_loader_keeps_only_judged_queries_of_the_split(beir_dir):
    data = load_beir(str(beir_dir), "test")
    assert list(data.queries) == ["q1", "q2", "q3"] and data.qrels["q3"] == {"d-attn": 1, "d-res": 0}
    assert list(load_beir(str(beir_dir), "train").queries) == ["q4"]
    assert read_qrels(str(beir_dir / "qrels" / "test.tsv"))["q1"] == {"2305.14314v1": 2}
    with pytest.raises(ValueError):
        load_beir(str(beir_dir), "dev")


@pytest.mark.parametrize("dataset, without", [("scifact", {"0", "4"}), ("pubmedqa", set())])
def test_claims_whose_abstract_holds_no_evidence_are_known(dataset, without):
    """SciFact's "not enough info" claims (empty metadata) are told apart; a dataset without rationales has none."""
    data = load_beir(str(SHARED / "data" / dataset), "train")
    assert without <= data.without_evidence and (len(data.without_evidence) > 200) == (dataset == "scifact")
    assert all(q in data.queries for q in data.without_evidence)


def test_benchmark_runs_end_to_end_and_reuses_its_index(beir_dir, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = ["--beir", str(beir_dir), "--split", "test", "--mode", "all", "--json", "--index-cache", str(cache)]
    assert retrieval.main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert set(first) == {"dataset", "split", "queries", "modes"}
    assert (first["dataset"], first["split"], first["queries"]) == ("tinybeir", "test", 3)
    assert set(first["modes"]) == {"dense", "bm25", "hybrid"}
    for scores in first["modes"].values():
        assert set(scores) == {"ndcg@10", "recall@10", "recall@100", "mrr@10", "qps"}
        assert scores["qps"] > 0
    # q1's judged id is an older arXiv version, indexed (merged with v2) as 2305.14314.
    assert first["modes"]["hybrid"]["recall@100"] == 1.0 and first["modes"]["hybrid"]["mrr@10"] == 1.0

    [directory] = [cache / d for d in os.listdir(cache)]
    index = StoreConfig(path=str(directory / "index"))
    generation = Store.read_meta(index).generation
    assert retrieval.main(["--beir", str(beir_dir), "--mode", "bm25", "--index-cache", str(cache)]) == 0
    table = capsys.readouterr().out
    assert "bm25" in table and "nDCG@10" in table and "hybrid" not in table
    assert Store.read_meta(index).generation == generation  # nothing was ingested again


def test_bad_directory_is_a_clear_error(tmp_path, capsys):
    assert retrieval.main(["--beir", str(tmp_path / "missing"), "--index-cache", str(tmp_path)]) == 2
    assert "corpus.jsonl" in capsys.readouterr().err


def test_settings_override_the_tuned_defaults():
    config = retrieval.configure(retrieval.RetrievalConfig(), ["fusion=rrf", "keyword.k1=1.2", "keyword.stem=false"])
    assert (config.fusion, config.keyword.k1, config.keyword.stem) == ("rrf", 1.2, False)
    assert retrieval.BASELINE.fusion == "rrf" and not retrieval.BASELINE.keyword.stem
    for bad in (["nosuch=1"], ["keyword=1"], ["dense_weight"], ["dense_weight=2"]):
        with pytest.raises(ValueError):
            retrieval.configure(retrieval.RetrievalConfig(), bad)
