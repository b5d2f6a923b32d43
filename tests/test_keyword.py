"""The BM25 keyword index: ranking, analysis, persistence, and following the store as it changes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chat.keyword import KeywordConfig, KeywordIndex
from chat.text import stem, tokenize
from ingest.chunk import chunk_paper
from ingest.records import make_paper
from ingest.store import Store, StoreConfig

PAPERS = [
    dict(raw_id="2305.14314", title="QLoRA: Efficient Finetuning of Quantized LLMs", date="2023-05-23",
         categories="cs.LG cs.CL", authors="Tim Dettmers, Artidoro Pagnoni",
         abstract="We present QLoRA, an efficient finetuning approach that reduces memory usage enough to finetune "
                  "a 65B parameter model on a single 48GB GPU while preserving 16-bit finetuning performance."),
    dict(raw_id="1706.03762", title="Attention Is All You Need", date="2017-06-12", categories="cs.CL",
         authors="Ashish Vaswani, Noam Shazeer",
         abstract="We propose a new simple network architecture, the Transformer, based solely on attention "
                  "mechanisms, dispensing with recurrence and convolutions entirely."),
    dict(raw_id="2106.09685", title="LoRA: Low-Rank Adaptation of Large Language Models", date="2021-06-17",
         categories="cs.CL cs.AI", authors="Edward Hu, Yelong Shen",
         abstract="We propose Low-Rank Adaptation, which freezes the pretrained model weights and injects trainable "
                  "rank decomposition matrices into each layer, greatly reducing the number of trainable parameters."),
    dict(raw_id="1512.03385", title="Deep Residual Learning for Image Recognition", date="2015-12-10",
         categories="cs.CV", authors="Kaiming He, Xiangyu Zhang",
         abstract="We present a residual learning framework to ease the training of networks that are substantially "
                  "deeper than those used previously, and win ImageNet classification."),
]


def _write(store: Store, embedder, papers, remove=()) -> None:
    chunks = [c for p in papers for c in chunk_paper(p, window_tokens=embedder.max_tokens)]
    store.write(papers, chunks, embedder.embed([c.text for c in chunks]), remove=remove)


def _new_store(path, embedder) -> Store:
    store = Store.open(StoreConfig(path=str(path)), embedder.name, embedder.dim)
    _write(store, embedder, [make_paper(**p) for p in PAPERS])
    return store


@pytest.fixture(scope="module")
def shared(tmp_path_factory, embedder) -> Store:
    """The four papers, for tests that only read."""
    return _new_store(tmp_path_factory.mktemp("kw_shared"), embedder)


@pytest.fixture()
def store(tmp_path, embedder) -> Store:
    """The four papers in a store of this test's own, for tests that change it."""
    return _new_store(tmp_path / "index", embedder)


@pytest.mark.parametrize("query, expected", [
    ("finetuning quantized models on one GPU", "2305.14314"),
    ("recurrence-free attention architecture", "1706.03762"),
    ("low rank decomposition of trainable weights", "2106.09685"),
    ("residual networks for ImageNet", "1512.03385"),
])
def test_bm25_ranks_the_paper_with_the_query_words_first(shared, query, expected):
    index = KeywordIndex.open(shared, None)
    assert index.top(query, k=1)[0][0] == expected


@pytest.mark.parametrize("variant, original", [("finetunes", "finetuning"), ("architectures", "architecture"),
                                               ("residually", "residual"), ("recognitions", "recognition")])
def test_stemming_matches_other_forms_of_a_word(shared, variant, original):
    stemmed, plain = KeywordIndex.open(shared, None), KeywordIndex.open(shared, None, KeywordConfig(stem=False))
    assert stem(variant) == stem(original)
    assert stemmed.top(variant, k=1) and not plain.top(variant, k=1)


def test_stop_words_alone_match_nothing(shared):
    index = KeywordIndex.open(shared, None)
    assert tokenize("what is the of and") == [] and index.top("what is the of and", k=3) == []


def test_title_weight_lifts_papers_whose_title_has_the_words(tmp_path, embedder):
    store = Store.open(StoreConfig(path=str(tmp_path / "i")), embedder.name, embedder.dim)
    in_title = make_paper(raw_id="t", title="Protein folding", abstract="A study of structures in cells.")
    in_body = make_paper(raw_id="b", title="A study", abstract="Protein folding of structures in cells.")
    _write(store, embedder, [in_title, in_body])
    index = KeywordIndex.open(store, None)
    plain = index.scores("protein folding", KeywordConfig(title_weight=1.0))[0]
    weighted = index.scores("protein folding", KeywordConfig(title_weight=3.0))[0]
    t, b = index.papers.position["t"], index.papers.position["b"]
    assert weighted[t] - weighted[b] > plain[t] - plain[b]


def test_scores_are_bounded_by_the_best_possible(shared):
    index = KeywordIndex.open(shared, None)
    scores, best = index.scores("QLoRA finetuning memory GPU")
    assert 0 < scores.max() < best


def test_saved_index_is_loaded_without_rebuilding(store, tmp_path):
    first = KeywordIndex.open(store, str(tmp_path / "kw"))
    again = KeywordIndex.open(store, str(tmp_path / "kw"))
    assert first.built and not again.built and again.updated == 0
    assert again.generation == store.meta.generation
    assert again.top("attention recurrence", k=4) == first.top("attention recurrence", k=4)
    assert np.array_equal(again.postings.docs, first.postings.docs)


def test_index_follows_papers_added_replaced_and_removed(store, embedder, tmp_path):
    directory = str(tmp_path / "kw")
    KeywordIndex.open(store, directory)
    _write(store, embedder, [make_paper(raw_id="2312.00752", title="Mamba", date="2023-12-01",
                                        abstract="Selective state space models match Transformers in linear time.")])
    added = KeywordIndex.open(store, directory)
    assert not added.built and added.updated == 1
    assert added.top("selective state space", k=1)[0][0] == "2312.00752"

    _write(store, embedder, [make_paper(raw_id="2312.00752", title="Mamba", abstract="Hyena convolutions instead.")])
    replaced = KeywordIndex.open(store, directory)
    assert replaced.updated == 1 and replaced.top("selective state space", k=1) == []
    assert replaced.top("hyena convolutions", k=1)[0][0] == "2312.00752"

    store.write([], [], [], remove=["2312.00752", "1706.03762"])
    removed = KeywordIndex.open(store, directory)
    assert removed.updated == 2 and not removed.built and len(removed) == 3
    assert removed.top("hyena", k=1) == [] and removed.top("attention recurrence", k=4) == []
    assert removed.top("residual ImageNet", k=1)[0][0] == "1512.03385"  # renumbered papers still score right
    assert set(removed.papers.ids) == {"2305.14314", "2106.09685", "1512.03385"}


def test_sync_in_place_matches_a_fresh_build(store, embedder):
    index = KeywordIndex.open(store, None)
    _write(store, embedder, [make_paper(raw_id="x1", title="Graph networks", abstract="Message passing on graphs.")])
    store.write([], [], [], remove=["2106.09685"])
    assert index.sync(store) == 2
    fresh = KeywordIndex.open(store, None)
    for query in ("message passing graphs", "finetuning GPU memory", "rank decomposition"):
        assert index.top(query, k=5) == pytest.approx(fresh.top(query, k=5))


@pytest.mark.parametrize("damage", ["garbage json", "other analyser", "missing arrays"])
def test_damaged_or_incompatible_saved_index_is_rebuilt(store, tmp_path, damage):
    directory = tmp_path / "kw"
    KeywordIndex.open(store, str(directory))
    info = directory / "index.json"
    if damage == "garbage json":
        info.write_text("{not json")
    elif damage == "other analyser":
        info.write_text(json.dumps({**json.loads(info.read_text()), "stem": False}))
    else:
        token = json.loads(info.read_text())["token"]
        (directory / token / "docs.npy").unlink()
    rebuilt = KeywordIndex.open(store, str(directory))
    assert rebuilt.built and rebuilt.top("QLoRA", k=1)[0][0] == "2305.14314"


@pytest.mark.parametrize("kwargs, expected", [
    (dict(year_min=2021), {"2305.14314", "2106.09685"}),
    (dict(year_max=2017), {"1706.03762", "1512.03385"}),
    (dict(year_min=2016, year_max=2021), {"1706.03762", "2106.09685"}),
    (dict(category="cs.cl"), {"2305.14314", "1706.03762", "2106.09685"}),
    (dict(category="cs"), {p["raw_id"] for p in PAPERS}),
    (dict(category="cs.CV"), {"1512.03385"}),
    (dict(author="VASWANI"), {"1706.03762"}),
    (dict(author="kaiming he"), {"1512.03385"}),
    (dict(author="shazeer, edward"), set()),  # a substring of one name, never across two papers' names
    (dict(paper_ids=["2106.09685", "9999.99999"]), {"2106.09685"}),
    (dict(year_min=2020, category="cs.AI"), {"2106.09685"}),
])
def test_paper_table_filters(shared, kwargs, expected):
    table = KeywordIndex.open(shared, None).papers
    mask = table.allowed(**kwargs)
    assert {table.ids[i] for i in np.flatnonzero(mask)} == expected


def test_no_filter_is_no_mask(shared):
    assert KeywordIndex.open(shared, None).papers.allowed() is None


def test_saved_index_opens_memory_mapped(store, tmp_path):
    KeywordIndex.open(store, str(tmp_path / "kw"))
    again = KeywordIndex.open(store, str(tmp_path / "kw"))
    for array in (again.postings.docs, again.postings.indptr, again.papers.year, again.papers.arrays["authors_blob"]):
        assert isinstance(array.base, np.memmap)  # a view of the file, not a copy in memory
    assert again.top("QLoRA finetuning", k=1)[0][0] == "2305.14314"
    folders = [p for p in (tmp_path / "kw").iterdir() if p.is_dir()]
    assert [p.name for p in folders] == [json.loads((tmp_path / "kw" / "index.json").read_text())["token"]]


class _SmallBatches(KeywordIndex):
    build_batch = 1  # every paper its own batch: the bulk build's merging is exercised


def test_building_in_batches_equals_one_batch(shared):
    whole, batched = KeywordIndex.open(shared, None), _SmallBatches.open(shared, None)
    assert batched.papers.ids == whole.papers.ids
    terms = whole.postings.vocab.terms()  # numbered in another order: compare term by term
    assert sorted(batched.postings.vocab.terms()) == sorted(terms)
    for t in terms:
        assert all(np.array_equal(a, b) for a, b in zip(batched.postings.slice(t), whole.postings.slice(t)))
    assert np.array_equal(batched.postings.len_body, whole.postings.len_body)
    for query in ("finetuning quantized models", "attention recurrence", "residual ImageNet"):
        assert batched.top(query, k=4) == whole.top(query, k=4)


def test_postings_count_every_term_of_real_abstracts():
    """Postings built from SciFact abstracts in three adds, one remove, against plain counting."""
    from collections import Counter

    from benchmarks.beir import iter_corpus
    from chat.postings import Postings
    from tests.conftest import SHARED

    rows = [r for _, r in zip(range(60), iter_corpus(str(SHARED / "data" / "scifact")))]
    titles, bodies = [tokenize(r["title"]) for r in rows], [tokenize(r["text"]) for r in rows]
    postings = Postings.empty()
    for start in (0, 20, 40):
        postings.add(titles[start:start + 20], bodies[start:start + 20], offset=start, analyse=lambda w: w)
    drop = np.zeros(60, dtype=bool)
    drop[::7] = True
    postings.remove(drop)
    kept = [i for i in range(60) if not drop[i]]
    for word in {w for i in kept for w in titles[i] + bodies[i]}:
        docs, tf_body, tf_title = postings.slice(word)
        expected = [(n, Counter(bodies[i])[word], Counter(titles[i])[word]) for n, i in enumerate(kept)
                    if word in titles[i] or word in bodies[i]]
        assert list(zip(docs.tolist(), tf_body.tolist(), tf_title.tolist())) == expected
    assert postings.len_body.tolist() == [len(bodies[i]) for i in kept]
