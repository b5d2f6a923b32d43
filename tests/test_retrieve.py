"""Hybrid retrieval on real Chroma and the real MiniLM embedder: quality, filters, hit fields, refresh."""

from __future__ import annotations

import json
import numpy as np
import pytest

from benchmarks.beir import evaluate, iter_corpus, load_beir
from chat.retrieve import Filters, RetrievalConfig, Retriever
from ingest.pipeline import ingest
from ingest.records import make_paper
from ingest.store import Chunk, Store, StoreConfig
from tests.conftest import SHARED
from tests.test_keyword import PAPERS, _write

SCIFACT = SHARED / "data" / "scifact"
N_QUERIES, FIRST_DOCS = 40, 200


@pytest.fixture(scope="module")
def scifact_subset(tmp_path_factory, embedder):
    """The first 40 SciFact training claims, their relevant abstracts and the first 200 abstracts of the corpus
    (a neutral sample: chosen by neither retriever), ingested through the pipeline."""
    data = load_beir(str(SCIFACT), "train")
    queries = dict(list(data.queries.items())[:N_QUERIES])
    relevant = {d for q in queries for d in data.qrels[q]}
    rows = [row for i, row in enumerate(iter_corpus(str(SCIFACT))) if i < FIRST_DOCS or str(row["_id"]) in relevant]
    folder = tmp_path_factory.mktemp("scifact_subset")
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
    store = Store.open(StoreConfig(path=str(folder / "index")), embedder.name, embedder.dim)
    report = ingest([str(folder / "corpus.jsonl")], store, embedder)
    assert report.added == len(rows) and not report.rejected
    return store, queries, {q: data.qrels[q] for q in queries}


def _ndcg(retriever: Retriever, queries, qrels, mode: str) -> float:
    runs = {q: [r.paper_id for r in retriever.rank(text, 10, mode=mode)] for q, text in queries.items()}
    return evaluate(runs, qrels).ndcg10


def test_hybrid_is_at_least_as_good_as_either_side(scifact_subset, embedder, tmp_path):
    store, queries, qrels = scifact_subset
    retriever = Retriever(store, embedder, keyword_dir=str(tmp_path / "kw"))
    scores = {mode: _ndcg(retriever, queries, qrels, mode) for mode in ("dense", "bm25", "hybrid")}
    assert scores["hybrid"] >= max(scores["dense"], scores["bm25"]), scores
    assert scores["dense"] > 0.5 and scores["bm25"] > 0.5, scores  # both sides work on their own


@pytest.fixture(scope="module")
def papers_store(tmp_path_factory, embedder) -> Store:
    store = Store.open(StoreConfig(path=str(tmp_path_factory.mktemp("papers"))), embedder.name, embedder.dim)
    _write(store, embedder, [make_paper(**p) for p in PAPERS])
    return store


@pytest.fixture(scope="module")
def retriever(papers_store, embedder, tmp_path_factory) -> Retriever:
    return Retriever(papers_store, embedder, keyword_dir=str(tmp_path_factory.mktemp("kw")))


FILTERS = [
    (Filters(year_min=2021), {"2305.14314", "2106.09685"}),
    (Filters(year_max=2017), {"1706.03762", "1512.03385"}),
    (Filters(category="cs.CV"), {"1512.03385"}),
    (Filters(category="CS.CL"), {"2305.14314", "1706.03762", "2106.09685"}),
    (Filters(author="dettmers"), {"2305.14314"}),
    (Filters(paper_ids=("arXiv:1706.03762v5", "https://arxiv.org/abs/1512.03385")), {"1706.03762", "1512.03385"}),
    (Filters(year_min=2016, category="cs.CL", author="e"), {"1706.03762", "2106.09685", "2305.14314"}),
    (Filters(year_min=2030), set()),
]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
# over-fetched nearest chunks, those that pass kept / chunks fetched by id and scored exactly / an over-fetch
# cut short (only the keyword side's candidates then get exact dense scores)
@pytest.mark.parametrize("exact_max, overfetch_max", [(0, 4000), (200, 4000), (0, 1)])
@pytest.mark.parametrize("filters, allowed", FILTERS)
def test_filters_restrict_results(papers_store, embedder, retriever, mode, exact_max, overfetch_max, filters, allowed):
    r = Retriever(papers_store, embedder, RetrievalConfig(exact_max=exact_max, overfetch_max=overfetch_max),
                  keyword_dir=retriever.keyword.directory)
    hits = r.search("finetuning a large model with few trainable parameters", k=4, filters=filters, mode=mode)
    found = {h.paper.paper_id for h in hits}
    assert found <= allowed
    if mode != "bm25" and overfetch_max > 1:  # dense ranks every allowed paper; BM25 only those sharing a word
        assert found == allowed


def test_unfiltered_search_returns_the_best_paper_first(retriever):
    hits = retriever.search("low-rank adaptation of language models", k=4)
    assert [h.rank for h in hits] == [1, 2, 3, 4] and hits[0].paper.paper_id == "2106.09685"
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_hit_dense_is_the_raw_best_chunk_cosine(retriever, embedder, mode):
    query = "memory-efficient finetuning of quantized 65B models"
    hits = retriever.search(query, k=4, mode=mode)
    q = embedder.embed_query(query)
    for hit in hits:
        assert hit.passages, hit
        best = max(float(np.dot(q, embedder.embed_query(text))) for text in hit.passages)
        assert hit.dense == pytest.approx(best, abs=2e-3)
        assert 0.0 <= hit.keyword <= 1.0
    assert hits[0].paper.paper_id == "2305.14314" and hits[0].keyword > 0.2


def test_keyword_score_is_zero_without_shared_words(retriever):
    hits = retriever.search("zebra savanna migration", k=4, mode="dense")
    assert len(hits) == 4 and all(h.keyword == 0.0 for h in hits) and all(h.dense < 0.3 for h in hits)


@pytest.mark.parametrize("bad", [dict(query=""), dict(query="x", mode="sparse")])
def test_bad_input_is_a_value_error(retriever, bad):
    with pytest.raises(ValueError):
        retriever.search(**{"query": "x", **bad})


def test_bad_filters_are_value_errors():
    with pytest.raises(ValueError):
        Filters(year_min=2022, year_max=2020)
    with pytest.raises(ValueError):
        Filters(paper_ids="2305.14314")
    with pytest.raises(ValueError):
        RetrievalConfig(fusion="max")


def test_search_follows_the_store_after_an_ingest(tmp_path, embedder):
    store = Store.open(StoreConfig(path=str(tmp_path / "index")), embedder.name, embedder.dim)
    _write(store, embedder, [make_paper(**p) for p in PAPERS])
    retriever = Retriever(store, embedder)  # keyword index saved beside the store by default
    assert retriever.keyword.directory.startswith(str(tmp_path / "index"))
    _write(store, embedder, [make_paper(raw_id="2312.00752", title="Mamba", date="2023-12-01",
                                        abstract="Selective state space models scale linearly with length.")])
    assert retriever.search("selective state space models", k=1, mode="bm25")[0].paper.paper_id == "2312.00752"
    store.write([], [], [], remove=["2312.00752"])
    assert retriever.refresh() == 1
    assert all(h.paper.paper_id != "2312.00752" for h in retriever.search("selective state space", k=5))
    reopened = Retriever(store, embedder)
    assert not reopened.keyword.built and reopened.keyword.updated == 0


def test_search_sees_what_another_writer_added(tmp_path, embedder):
    """An ingest through another Store (another process, or another client of a Chroma server)
    is found once the search re-reads the store's generation."""
    path = str(tmp_path / "index")
    store = Store.open(StoreConfig(path=path), embedder.name, embedder.dim)
    _write(store, embedder, [make_paper(**p) for p in PAPERS])
    retriever = Retriever(store, embedder, RetrievalConfig(recheck_s=0.0))
    other = Store.open(StoreConfig(path=path), embedder.name, embedder.dim)
    _write(other, embedder, [make_paper(raw_id="2312.00752", title="Mamba", date="2023-12-01",
                                        abstract="Selective state space models scale linearly with length.")])
    hits = retriever.search("selective state space models", k=1, mode="bm25")
    assert hits[0].paper.paper_id == "2312.00752" and store.meta.generation == other.meta.generation
    assert hits[0].dense > 0.5 and hits[0].passages  # a keyword-only hit is scored densely by id


def test_score_chunks_is_exact_cosine_over_every_chunk(tmp_path):
    store = Store.open(StoreConfig(path=str(tmp_path / "index")), "m", 2)
    papers = [make_paper(raw_id="a", title="A", abstract="a"), make_paper(raw_id="b", title="B", abstract="b")]
    chunks = [Chunk("a", i, 7, f"a{i}") for i in range(7)] + [Chunk("b", 0, 1, "b0")]
    vectors = [[1.0, float(i)] for i in range(7)] + [[0.0, 3.0]]
    store.write(papers, chunks, vectors)
    hits = store.score_chunks([0.0, 1.0], ["a", "b", "missing"])
    # every chunk of a, also those past the ids tried before its n_chunks is read
    assert [h.chunk_id for h in hits] == ["b#0", *(f"a#{i}" for i in range(6, -1, -1))]
    assert hits[0].score == pytest.approx(1.0) and hits[-1].score == pytest.approx(0.0, abs=1e-6)
    assert hits[1].score == pytest.approx(6 / np.hypot(1, 6)) and hits[1].text == "a6" and hits[1].position == 6
    assert store.score_chunks([0.0, 1.0], []) == []


def test_nearest_among_scores_every_chunk_without_texts(tmp_path):
    store = Store.open(StoreConfig(path=str(tmp_path / "index")), "m", 2)
    papers = [make_paper(raw_id="a", title="A", abstract="a"), make_paper(raw_id="b", title="B", abstract="b")]
    chunks = [Chunk("a", i, 13, f"a{i}") for i in range(13)] + [Chunk("b", 0, 1, "b0")]
    store.write(papers, chunks, [[1.0, float(i)] for i in range(13)] + [[0.0, 3.0]])
    found = store.nearest_among([0.0, 1.0], ["a", "b", "missing"])
    # 13 chunks of a: three rounds of six ids probed; b's one chunk; nothing for a missing paper
    assert [c for c, _ in found] == ["b#0", *(f"a#{i}" for i in range(12, -1, -1))]
    assert found[0][1] == pytest.approx(1.0) and found[1][1] == pytest.approx(12 / np.hypot(1, 12))
    assert store.nearest_among([0.0, 1.0], []) == [] and store.nearest_among([0.0, 1.0], ["missing"]) == []
    assert [c for c, _ in store.nearest([0.0, 1.0], 3)] == ["b#0", "a#12", "a#11"]
