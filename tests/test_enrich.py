"""ingest/enrich.py against the stand-in arXiv API: papers without a title or id get them from a confident
text match, never from a near miss; offline says so at once; ``python -m ingest`` enriches new papers
automatically and ``--no-enrich`` opts out."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack

import pytest

from ingest.chunk import chunk_paper
from ingest.enrich import enrich, text_match
from ingest.records import Paper, make_paper
from ingest.source_types import ReadOptions
from ingest.sources import read_source
from ingest.store import Store, StoreConfig
from tests.conftest import ROOT, SEEDS
from tests.fixtures.standins import ArxivStandin, serve

SAMPLES = {p.paper_id: p for p in read_source(str(SEEDS)) if isinstance(p, Paper)}
QLORA, ORCA, GOAT, DISTIL = "doc-6b7688703829de0d", "doc-d6f6940ef0b61962", "doc-f37428952531d0bf", "2305.02301"


def reflowed(text: str) -> str:
    """The abstract as the arXiv API returns it: hard-wrapped lines, spaces before some punctuation."""
    words = text.replace(",", " ,").split()
    return "\n".join(" ".join(words[i:i + 11]) for i in range(0, len(words), 11))


ENTRIES = [
    {"id": "2305.14314", "title": "QLoRA: Efficient Finetuning of Quantized LLMs", "published": "2023-05-23T17:50:33Z",
     "abstract": reflowed(SAMPLES[QLORA].abstract), "authors": ["Tim Dettmers", "Artidoro Pagnoni"],
     "categories": ["cs.LG", "cs.CL"]},
    # Shares the words a QLoRA or Goat query asks for, but is another abstract: never a match.
    {"id": "2399.00002", "title": "A Decoy", "published": "2023-06-01T00:00:00Z", "authors": ["D. Coy"],
     "abstract": "We present QLoRA variants: an efficient finetuning approach that reduces memory usage and Goat, "
                 "a fine-tuned LLaMA model that significantly outperforms GPT-4 on arithmetic tasks after "
                 "synthetically generated data. Efficient finetuning reduces memory.", "categories": ["cs.LG"]},
    # Orca's paper, but a rewritten version of the abstract: not confident enough to accept.
    {"id": "2306.02707", "title": "Orca: Progressive Learning from Complex Explanation Traces of GPT-4",
     "published": "2023-06-05T00:00:00Z", "authors": ["Subhabrata Mukherjee"], "categories": ["cs.CL"],
     "abstract": " ".join(SAMPLES[ORCA].abstract.split()[:40]) + " In this revised version we describe entirely "
                 "different experiments, new baselines and another evaluation protocol for instruction tuning."},
    {"id": DISTIL, "title": "Distilling Step-by-Step! Outperforming Larger Language Models with Less Training Data",
     "published": "2023-05-03T00:00:00Z", "abstract": SAMPLES[DISTIL].abstract, "authors": ["Cheng-Yu Hsieh"],
     "categories": ["cs.CL"]},
]


@pytest.fixture
def arxiv():
    service = ArxivStandin(entries=ENTRIES)
    with ExitStack() as stack:
        service.base = stack.enter_context(serve(service))
        service.stop = stack.close
        yield service


def options(arxiv) -> ReadOptions:
    return ReadOptions(arxiv_base_url=arxiv.base + "/api/query", arxiv_delay_s=0.0)


def small_index(tmp_path, embedder, papers) -> Store:
    store = Store.open(StoreConfig(path=str(tmp_path / "index")), embedder.name, embedder.dim)
    chunks = [c for p in papers for c in chunk_paper(p, window_tokens=embedder.max_tokens)]
    store.write(papers, chunks, embedder.embed([c.text for c in chunks]))
    return store


@pytest.mark.parametrize("ours, theirs, same", [
    (SAMPLES[QLORA].abstract, ENTRIES[0]["abstract"], True),
    (SAMPLES[QLORA].abstract, ENTRIES[1]["abstract"], False),
    (SAMPLES[ORCA].abstract, ENTRIES[2]["abstract"], False),
    (SAMPLES[GOAT].abstract, ENTRIES[1]["abstract"], False),
])
def test_text_match_tells_the_same_abstract_from_a_near_miss(ours, theirs, same):
    assert (text_match(ours, theirs) >= 0.8) is same


def test_papers_get_title_authors_date_categories_and_link(arxiv, tmp_path, embedder):
    store = small_index(tmp_path, embedder, [SAMPLES[i] for i in (QLORA, ORCA, GOAT, DISTIL)])
    report = enrich(store, embedder, options=options(arxiv))
    assert not report.offline and report.looked_up == 4
    assert {old for old, _ in report.resolved} == {QLORA, DISTIL} and set(report.unresolved) == {ORCA, GOAT}
    papers = {p.paper_id: p for p in store.iter_papers()}
    assert set(papers) == {"2305.14314", ORCA, GOAT, DISTIL}  # the old id is gone, nothing else changed id
    qlora = papers["2305.14314"]
    assert (qlora.title, qlora.authors, qlora.date, qlora.categories, qlora.url) == (
        "QLoRA: Efficient Finetuning of Quantized LLMs", ("Tim Dettmers", "Artidoro Pagnoni"), "2023-05-23",
        ("cs.LG", "cs.CL"), "https://arxiv.org/abs/2305.14314")
    assert qlora.abstract == SAMPLES[QLORA].abstract  # our text (and fingerprint) is kept
    assert papers[DISTIL].title.startswith("Distilling Step-by-Step!")  # by its id, no text search needed
    assert papers[ORCA].title == "" and papers[GOAT].title == ""  # a near miss is not accepted
    chunk_ids = store.chunk_ids()
    assert any(c.startswith("2305.14314#") for c in chunk_ids) and not any(c.startswith(QLORA) for c in chunk_ids)
    id_lookups = [p for _, p in arxiv.requests if "id_list" in p]
    assert len(id_lookups) == 1 and len(arxiv.requests) == 2  # one id lookup, one OR-ed text search


def test_a_paper_already_indexed_under_the_found_id_is_merged(arxiv, tmp_path, embedder):
    titled = make_paper(raw_id="2305.14314", title="QLoRA", abstract="QLoRA finetunes 65B models on one GPU.",
                        source="ids.jsonl")
    store = small_index(tmp_path, embedder, [titled, SAMPLES[QLORA]])
    enrich(store, embedder, options=options(arxiv))
    papers = {p.paper_id: p for p in store.iter_papers()}
    assert set(papers) == {"2305.14314"} and papers["2305.14314"].title == "QLoRA"
    assert set(papers["2305.14314"].sources) == {"ids.jsonl", *SAMPLES[QLORA].sources}


def test_offline_says_so_at_once_and_changes_nothing(arxiv, tmp_path, embedder):
    store = small_index(tmp_path, embedder, [SAMPLES[QLORA]])
    arxiv.stop()  # nothing listens on its port any more
    report = enrich(store, lambda: pytest.fail("nothing to embed offline"), options=options(arxiv))
    assert "cannot be reached" in report.offline and "python -m ingest --enrich" in report.summary()
    assert [p.paper_id for p in store.iter_papers()] == [QLORA]


def run_cli(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "TIKTOKEN_CACHE_DIR": str(ROOT.parent / "shared" / "tiktoken"),
           "HF_HUB_OFFLINE": "1", "PAPERCHAT_ARXIV_URL": url + "/api/query", "no_proxy": "127.0.0.1"}
    return subprocess.run([sys.executable, "-m", "ingest", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


def test_ingest_enriches_new_papers_and_no_enrich_opts_out(arxiv, tmp_path):
    source = tmp_path / "untitled.jsonl"
    source.write_text(json.dumps({"abstract": SAMPLES[QLORA].abstract}) + "\n")
    skipped = run_cli(str(source), "--index", str(tmp_path / "a"), "--no-enrich", url=arxiv.base)
    assert skipped.returncode == 0 and not arxiv.requests and "enrich" not in skipped.stderr
    done = run_cli(str(source), "--index", str(tmp_path / "b"), url=arxiv.base)
    assert done.returncode == 0, done.stderr
    assert "enrich: 1 of 1 papers without a title or arXiv id found on arXiv" in done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("added 1,")  # the summary stays the last line
    listed = json.loads(run_cli("--list", "--json", "--index", str(tmp_path / "b"), url=arxiv.base).stdout)
    assert [(r["paper_id"], r["name"], r["name_derived"]) for r in listed["rows"]] == [
        ("2305.14314", "QLoRA: Efficient Finetuning of Quantized LLMs", False)]
