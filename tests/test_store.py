"""The Chroma store on real temp directories: round trips, rewrites, removal, model checks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ingest.records import make_paper
from ingest.store import Chunk, Store, StoreConfig
from models.errors import IndexMismatchError, PaperChatError

DIM = 4


def unit(*values: float) -> list[float]:
    v = np.array(values, dtype=np.float32)
    return list(v / np.linalg.norm(v))


@pytest.fixture
def store(tmp_path) -> Store:
    return Store.open(StoreConfig(path=str(tmp_path / "index")), model="test-model", dim=DIM)


QLORA = make_paper(raw_id="2305.14314v2", title="QLoRA", abstract="Finetune in 4 bits.", authors="A. One, B. Two",
                   date="2023-05-23", categories="cs.LG cs.CL", source="ids.txt")
ORCA = make_paper(title="Orca", abstract="Imitate GPT-4 explanations.", source="titles.txt")


def test_papers_round_trip_with_every_field(store):
    store.write([QLORA, ORCA], [Chunk(QLORA.paper_id, 0, 1, "QLoRA\nFinetune in 4 bits."),
                                Chunk(ORCA.paper_id, 0, 1, "Orca\nImitate.")], [unit(1, 0, 0, 0), unit(0, 1, 0, 0)])
    got = store.get_papers([QLORA.paper_id, ORCA.paper_id, "missing"])
    assert got == {QLORA.paper_id: QLORA, ORCA.paper_id: ORCA}
    assert got[QLORA.paper_id].sources == ("ids.txt",) and got[QLORA.paper_id].content_hash == QLORA.content_hash
    assert sorted(p.paper_id for p in store.iter_papers()) == sorted([QLORA.paper_id, ORCA.paper_id])
    assert store.stats().papers == 2 and store.stats().chunks == 2
    assert set(store.meta.sources) == {"ids.txt", "titles.txt"}


def test_query_ranks_by_cosine_and_filters_by_paper(store):
    store.write([QLORA, ORCA], [Chunk(QLORA.paper_id, 0, 1, "q"), Chunk(ORCA.paper_id, 0, 1, "o")],
                [unit(1, 0, 0, 0), unit(0, 1, 0, 0)])
    hits = store.query(unit(1, 0.1, 0, 0), k=2)
    assert [h.paper_id for h in hits] == [QLORA.paper_id, ORCA.paper_id]
    assert hits[0].score == pytest.approx(0.995, abs=0.01) and hits[0].chunk_id == "2305.14314#0"
    assert [h.paper_id for h in store.query(unit(1, 0, 0, 0), k=2, paper_ids=[ORCA.paper_id])] == [ORCA.paper_id]
    assert store.query(unit(1, 0, 0, 0), k=2, paper_ids=[]) == []


def test_rewriting_a_paper_with_fewer_chunks_drops_the_stale_ones(store):
    three = [Chunk(QLORA.paper_id, i, 3, f"part {i}") for i in range(3)]
    store.write([QLORA], three, [unit(1, i, 0, 0) for i in range(3)])
    gen = store.meta.generation
    store.write([QLORA], [Chunk(QLORA.paper_id, 0, 1, "whole")], [unit(0, 0, 1, 0)])
    assert store.chunk_ids() == {"2305.14314#0"}
    assert [(c, t) for c, _, t in store.iter_chunks(since_generation=gen)] == [("2305.14314#0", "whole")]
    assert store.meta.generation == gen + 1


def test_remove_drops_the_paper_and_its_chunks(store):
    store.write([ORCA], [Chunk(ORCA.paper_id, 0, 2, "a"), Chunk(ORCA.paper_id, 1, 2, "b")],
                [unit(1, 0, 0, 0), unit(0, 1, 0, 0)])
    moved = make_paper(raw_id="2306.02707", title="Orca", abstract=ORCA.abstract)
    store.write([moved], [Chunk(moved.paper_id, 0, 1, "c")], [unit(0, 0, 1, 0)], remove=[ORCA.paper_id])
    assert store.get_papers([ORCA.paper_id]) == {}
    assert store.chunk_ids() == {"2306.02707#0"}


def test_fingerprint_lookup_finds_every_paper_with_that_abstract(store):
    twin = make_paper(raw_id="2306.00001", abstract="Finetune in 4 bits!")  # same text but punctuation
    store.write([QLORA, twin, ORCA], [Chunk(p.paper_id, 0, 1, "x") for p in (QLORA, twin, ORCA)],
                [unit(1, 0, 0, 0)] * 3)
    found = store.papers_by_fingerprint([QLORA.fingerprint, "0" * 40])
    assert list(found) == [QLORA.fingerprint]
    assert [p.paper_id for p in found[QLORA.fingerprint]] == ["2305.14314", "2306.00001"]
    assert store.find_by_fingerprint([QLORA.fingerprint])[QLORA.fingerprint].paper_id == "2305.14314"


def test_index_persists_and_refuses_another_model(tmp_path):
    config = StoreConfig(path=str(tmp_path / "index"))
    Store.open(config, "model-a", DIM).write([ORCA], [Chunk(ORCA.paper_id, 0, 1, "o")], [unit(1, 0, 0, 0)])
    reopened = Store.open(config, "model-a", DIM)
    assert reopened.stats().papers == 1 and reopened.meta.model == "model-a"
    with pytest.raises(IndexMismatchError, match="model-a.*model-b"):
        Store.open(config, "model-b", DIM)
    with pytest.raises(IndexMismatchError, match="4 dimensions.*8 dimensions"):
        Store.open(config, "model-a", 8)
    assert Store.read_meta(config).model == "model-a"
    existing = Store.open_existing(config)
    assert (existing.meta.model, existing.meta.dim, existing.stats().papers) == ("model-a", DIM, 1)


def test_open_existing_creates_nothing_where_there_is_no_index(tmp_path):
    missing = tmp_path / "nothing"
    with pytest.raises(PaperChatError, match="no index"):
        Store.open_existing(StoreConfig(path=str(missing)))
    assert not missing.exists()
    other = tmp_path / "other"
    Store.open(StoreConfig(path=str(other)), "m", DIM)
    with pytest.raises(PaperChatError, match="no index named 'elsewhere'"):
        Store.open_existing(StoreConfig(path=str(other), name="elsewhere"))
    assert os.path.isfile(other / "chroma.sqlite3")
