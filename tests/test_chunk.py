"""Chunking: one chunk when title + abstract fit, sentence windows with overlap otherwise,
and budgets that really fit the embedding model's window."""

from __future__ import annotations

import dataclasses

import pytest

from ingest.chunk import ChunkerConfig, _encoding, chunk_paper, measure_pieces_per_token, split_sentences
from ingest.records import Paper, make_paper
from ingest.sources import read_source
from tests.conftest import SEEDS, SHARED

SCIFACT = SHARED / "data" / "scifact" / "corpus.jsonl"
CONFIG = ChunkerConfig()


def tokens(text: str) -> int:
    return len(_encoding(CONFIG.encoding).encode_ordinary(text))


def body(chunk_text: str, title: str) -> str:
    assert chunk_text.startswith(title + "\n")
    return chunk_text[len(title) + 1:]


def long_paper(n_sentences: int = 60, title: str = "A title") -> Paper:
    sentences = [f"Sentence number {i} reports finding {i} about protein folding in yeast cells." for i in range(n_sentences)]
    return make_paper(raw_id="2301.00001", title=title, abstract=" ".join(sentences))


def test_a_short_paper_is_one_chunk_of_title_and_abstract():
    paper = make_paper(raw_id="2305.14314", title="QLoRA", abstract="We finetune in 4 bits. It works.")
    [chunk] = chunk_paper(paper, CONFIG, 256)
    assert (chunk.chunk_id, chunk.paper_id, chunk.position, chunk.n_chunks) == ("2305.14314#0", "2305.14314", 0, 1)
    assert chunk.text == "QLoRA\nWe finetune in 4 bits. It works."


def test_a_paper_without_title_is_just_its_abstract():
    paper = make_paper(abstract="Only an abstract.")
    assert [c.text for c in chunk_paper(paper)] == ["Only an abstract."]


def test_budget_derives_from_the_model_window():
    assert CONFIG.budget(256) == int((256 * CONFIG.window_share - CONFIG.special_tokens) / CONFIG.pieces_per_token)
    assert ChunkerConfig(window_share=1.0).budget(256) == int((256 - 2) / 1.3) == 195
    assert CONFIG.budget(256) == 96  # MiniLM: half its 256-piece window, the length it was trained on
    assert CONFIG.budget(512) > 2 * CONFIG.budget(256) - 5
    assert 0 < CONFIG.overlap_tokens(256) < CONFIG.budget(256) // 2
    with pytest.raises(ValueError):
        CONFIG.budget(8)
    with pytest.raises(ValueError):
        ChunkerConfig(overlap=0.7)
    with pytest.raises(ValueError):
        ChunkerConfig(window_share=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONFIG.overlap = 0.2  # type: ignore[misc]


@pytest.mark.parametrize("window", [128, 256, 512])
def test_long_abstract_splits_at_sentences_with_overlap(window):
    paper = long_paper()
    chunks = chunk_paper(paper, CONFIG, window)
    budget = CONFIG.budget(window)
    assert len(chunks) > 1
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert {c.n_chunks for c in chunks} == {len(chunks)} and len({c.chunk_id for c in chunks}) == len(chunks)
    sentences = split_sentences(paper.abstract)
    covered: list[str] = []
    previous: list[str] = []
    for chunk in chunks:
        assert tokens(chunk.text) <= budget
        own = split_sentences(body(chunk.text, paper.title))
        assert all(s in sentences for s in own), "chunks hold whole sentences"
        if previous:
            assert own[0] in previous, "each chunk starts with a sentence of the previous one"
            assert own[-1] not in previous, "and moves on"
        covered.extend(s for s in own if s not in covered)
        previous = own
    assert covered == sentences


def test_a_sentence_longer_than_a_chunk_is_split_at_words():
    words = [f"word{i}" for i in range(800)]
    paper = make_paper(title="T", abstract="Intro. " + " ".join(words) + ". Outro.")
    chunks = chunk_paper(paper, CONFIG, 128)
    assert all(tokens(c.text) <= CONFIG.budget(128) for c in chunks)
    seen = [w.rstrip(".") for c in chunks for w in body(c.text, "T").split()]
    assert set(words) <= set(seen), "no word is cut or lost"


def test_a_word_longer_than_a_chunk_is_cut_by_tokens():
    blob = "ACGT" * 2000
    paper = make_paper(title="Genome", abstract=f"Sequence: {blob}")
    chunks = chunk_paper(paper, CONFIG, 128)
    assert len(chunks) > 3 and all(tokens(c.text) <= CONFIG.budget(128) for c in chunks)
    assert "".join(body(c.text, "Genome").replace("Sequence: ", "").replace(" ", "") for c in chunks).count("ACGT") >= 1900


def test_a_runaway_title_leaves_room_for_the_abstract():
    paper = long_paper(title="Very long title " * 124)  # just under the 2,000-character limit
    chunks = chunk_paper(paper, CONFIG, 256)
    assert all(tokens(c.text) <= CONFIG.budget(256) for c in chunks)
    assert all(len(c.text.split("\n", 1)[1]) > 100 for c in chunks)


def test_sentence_splitting_keeps_abbreviations():
    text = 'Models (e.g. BERT) help. Smith et al. 2020 disagree! Is it "true?" Yes, see Fig. 3. Done'
    assert split_sentences(text) == ["Models (e.g. BERT) help.", "Smith et al. 2020 disagree!", 'Is it "true?"',
                                     "Yes, see Fig. 3.", "Done"]


@pytest.mark.parametrize("seed", sorted(p.name for p in SEEDS.iterdir()))
def test_every_seed_paper_chunks_consistently(seed):
    papers = [r for r in read_source(str(SEEDS / seed)) if isinstance(r, Paper)]
    assert papers
    for paper in papers:
        chunks = chunk_paper(paper, CONFIG, 256)
        assert [c.position for c in chunks] == list(range(len(chunks)))
        assert all(c.paper_id == paper.paper_id and c.n_chunks == len(chunks) for c in chunks)
        assert all(c.text.startswith(paper.title) for c in chunks)
        if tokens(f"{paper.title}\n{paper.abstract}") <= CONFIG.budget(256):
            assert len(chunks) == 1


def test_chunks_of_real_abstracts_fit_the_model_window(embedder):
    """The derived budget holds for the model itself: no chunk of the longest SciFact abstracts is truncated."""
    papers = [r for r in read_source(str(SCIFACT)) if isinstance(r, Paper)]
    longest = sorted(papers, key=lambda p: len(p.abstract), reverse=True)[:300]
    chunks = [c for p in longest for c in chunk_paper(p, CONFIG, embedder.max_tokens)]
    assert len(chunks) > 900
    worst = max(embedder.count_tokens(c.text) for c in chunks)
    allowed = embedder.max_tokens * CONFIG.window_share
    assert worst <= allowed <= embedder.max_tokens
    assert worst > 0.8 * allowed, "the budget should also not waste the window"


def test_measured_ratio_is_below_the_configured_one(embedder):
    texts = [r.abstract for r in read_source(str(SEEDS)) if isinstance(r, Paper)]
    ratios = measure_pieces_per_token(texts, lambda t: embedder.count_tokens(t) - 2)
    assert len(ratios) > 100
    assert 1.0 < max(ratios) <= CONFIG.pieces_per_token
