"""ingest/library.py and ``python -m ingest --list``: every paper listed with its name (derived names
marked), id, year, source and chunks; removing a paper or a source removes exactly that."""

from __future__ import annotations

import json

from chat.retrieve import Retriever
from ingest.__main__ import main
from ingest.chunk import chunk_paper
from ingest.library import read_library, remove_papers, remove_source
from ingest.records import make_paper
from ingest.store import Store, StoreConfig


def test_list_shows_every_sample_paper_with_names(seed_ingest, capsys):
    assert main(["--list", "--json", "--index", seed_ingest.config.path]) == 0
    listed = json.loads(capsys.readouterr().out)
    rows = listed["rows"]
    assert listed["papers"] == len(rows) == seed_ingest.report.papers_in_index == 180
    assert listed["chunks"] == seed_ingest.report.chunks_in_index == sum(r["chunks"] for r in rows)
    assert sum(r["name_derived"] for r in rows) == 124 and all(r["name"] for r in rows)
    qlora = next(r for r in rows if r["paper_id"] == "doc-6b7688703829de0d")
    assert (qlora["name"], qlora["name_derived"], qlora["url"]) == ("QLoRA", True, "")
    distil = next(r for r in rows if r["paper_id"] == "2305.02301")
    assert distil["year"] == 2023 and distil["url"] == "https://arxiv.org/abs/2305.02301"
    assert sum(s["papers"] for s in listed["sources"]) >= 180  # a paper given by two files counts for both
    assert main(["--list", "--index", seed_ingest.config.path]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 182 and text[-1] == "180 papers, 881 chunks, 5 sources (124 papers named from their abstracts)"
    assert any(line.startswith("doc-6b7688703829de0d") and line.endswith("QLoRA (derived)") for line in text)


def test_removing_a_source_keeps_papers_another_source_also_gave(tmp_path, embedder):
    store = Store.open(StoreConfig(path=str(tmp_path / "index")), embedder.name, embedder.dim)
    only_a = make_paper(raw_id="2301.00001", title="Only in a", abstract="Alpha papers study alpha.", source="a.jsonl")
    both = make_paper(raw_id="2301.00002", title="In both", abstract="Beta papers study beta.", source="a.jsonl")
    both = type(both)(**{**both.__dict__, "sources": ("a.jsonl", "b.jsonl")})
    only_b = make_paper(raw_id="2301.00003", title="Only in b", abstract="Gamma papers study gamma.", source="b.jsonl")
    papers = [only_a, both, only_b]
    chunks = [c for p in papers for c in chunk_paper(p, window_tokens=embedder.max_tokens)]
    store.write(papers, chunks, embedder.embed([c.text for c in chunks]))
    retriever = Retriever(store, embedder, keyword_dir=str(tmp_path / "kw"))
    assert {h.paper.paper_id for h in retriever.search("alpha", k=3)} >= {"2301.00001"}

    removal = remove_source(store, "a.jsonl")
    assert removal.removed == ("2301.00001",) and removal.kept == ("2301.00002",)
    library = read_library(store)
    assert [(r.paper_id, r.sources) for r in library.rows] == [("2301.00002", ("b.jsonl",)),
                                                              ("2301.00003", ("b.jsonl",))]
    assert "a.jsonl" not in store.stats().sources and library.sources == (("b.jsonl", 2),)
    retriever.refresh()
    assert "2301.00001" not in {h.paper.paper_id for h in retriever.search("alpha papers study alpha", k=3)}
    assert remove_papers(store, ["2301.00003", "no-such-id"]).removed == ("2301.00003",)
    assert [r.paper_id for r in read_library(store).rows] == ["2301.00002"] and store.stats().chunks == 1
