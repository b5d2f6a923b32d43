"""``python -m benchmarks.speed --quick --json``: the whole benchmark on tiny sizes gives the documented shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.speed_ingest import answerable, select_corpus
from tests.conftest import ROOT, SHARED


@pytest.fixture(scope="module")
def quick_run():
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(SHARED / "tiktoken"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--quick", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_json_has_the_issue_shape(quick_run):
    assert set(quick_run) >= {"ingest", "retrieval", "server", "prompt_tokens", "ttft_s", "rss_mb"}
    assert set(quick_run["ingest"]) >= {"ours_pps", "naive_pps", "ratio", "ndcg_ours", "ndcg_naive"}
    assert set(quick_run["retrieval"]) == {"100", "200"} and set(quick_run["server"]) == {"200"}
    for size in quick_run["retrieval"].values():
        assert set(size) >= {"p50_ms", "p95_ms", "open_s", "first_search_s", "rss_start", "rss_after", "disk_mb",
                             "keyword_disk_mb", "build", "recall", "searches"}
        for figures in size["searches"].values():  # no filter, a year filter, a category filter
            assert 0 < figures["p50_ms"] <= figures["p95_ms"]
        assert set(size["searches"]) == {"none", "year", "category"}
    assert set(quick_run["rss_mb"]) == {"ingest", "ingest_naive", "app", "answers"}


def test_figures_are_real_measurements(quick_run):
    ingest = quick_run["ingest"]
    assert ingest["ours_pps"] > 0 and ingest["naive_pps"] > 0
    assert ingest["ratio"] == pytest.approx(ingest["ours_pps"] / ingest["naive_pps"])
    assert ingest["chunks_ours"] >= ingest["papers"] == 16
    # both indexes hold the same chunks: their dense rankings agree up to the embedder's fidelity
    assert 0.3 < ingest["ndcg_naive"] <= 1 and abs(ingest["ndcg_ours"] - ingest["ndcg_naive"]) < 0.05
    sizes = quick_run["retrieval"]
    assert (sizes["100"]["papers"], sizes["200"]["papers"]) == (100, 200)
    assert not sizes["200"]["keyword_rebuilt"]  # the app loads the saved keyword index
    for size in sizes.values():
        assert size["chunks"] > size["papers"] and size["build"]["papers"] == size["papers"]
        assert size["build"]["chunks"] == size["chunks"] and size["build"]["write_s"] > 0
        assert size["open_s"] < size["first_search_s"] and size["rss_after"]["VmRSS"] > 50
        # recall of the HNSW search against exact search over the recomputed vectors: at this size, exact
        recall = size["recall"]
        assert recall["queries"] == 5 and all(recall[k]["recall_at_10"] >= 0.9 for k in recall if k.startswith("k"))
        assert size["searches"]["category"]["passing"] < size["papers"]
    server = quick_run["server"]["200"]
    assert server["server_rss"]["VmRSS"] > 50 and 0 < server["searches"]["none"]["p50_ms"]
    assert quick_run["prompt_tokens"] > 0 and quick_run["ttft_s"] > 0
    assert all(v > 50 for v in quick_run["rss_mb"].values())


def test_corpus_selection_keeps_every_judged_abstract():
    rows = select_corpus(str(SHARED / "data" / "scifact"), 2000)
    ids = {r["_id"] for r in rows}
    from benchmarks.beir import load_beir

    qrels = load_beir(str(SHARED / "data" / "scifact"), "train").qrels
    assert len(rows) == len(ids) == 2000
    assert len(answerable(qrels, ids)) == len(qrels)
