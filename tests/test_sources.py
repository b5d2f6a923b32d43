"""Parsers of every local format: the five seed documents, BEIR, the arXiv snapshot, JSON/CSV/TSV/Parquet.

Bad input has its own file (test_sources_bad_input.py); remote sources are in test_remote.py.
"""

from __future__ import annotations

import csv
import json
import re
import tracemalloc
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.records import Paper
from ingest.sources import ReadOptions, Rejection, read_source, sniff_format
from tests.conftest import SEEDS, SHARED

SEED_FILES = {p.name[:3]: p for p in sorted(SEEDS.glob("*.txt"))}
CHROME = re.compile(r"Subscribe|Get trending papers|Daily Papers|byAK and the research community|Daily curated AI|"
                    r"\d+ authors\b|[•·]|^(new|Abstract)\b|"
                    r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}(, \d{4})?( \d+)?$")

def _read(spec, **options) -> tuple[list[Paper], list[Rejection]]:
    records = list(read_source(str(spec), ReadOptions(**options)))
    return [r for r in records if isinstance(r, Paper)], [r for r in records if isinstance(r, Rejection)]


@pytest.mark.parametrize("seed, fmt, count", [("000", "abstract-lines", 12), ("001", "dump", 100),
                                              ("002", "abstract-lines", 14), ("003", "pages", 36),
                                              ("004", "pages", 22)])
def test_every_seed_parses_completely_and_cleanly(seed, fmt, count):
    path = SEED_FILES[seed]
    assert sniff_format(path) == (fmt, "")
    papers, rejected = _read(path)
    assert rejected == [] and len(papers) == count
    for paper in papers:
        assert paper.sources == (path.name,)
        assert not CHROME.search(paper.title), paper.title
        assert not CHROME.search(paper.abstract), paper.abstract[-60:]
        assert len(paper.abstract.split()) >= 30 and len(paper.title.split()) < 30


def test_abstract_lines_have_no_ids_or_titles():
    papers, _ = _read(SEED_FILES["000"])
    assert all(p.paper_id.startswith("doc-") and not p.title and not p.arxiv_id for p in papers)
    assert papers[0].abstract.startswith("We present QLoRA, an efficient finetuning approach")
    assert papers[-1].abstract.endswith("We release all code and scripts to train and evaluate models")


def test_dump_pairs_ids_with_abstracts_and_keeps_versions():
    papers, _ = _read(SEED_FILES["001"])
    assert papers[0].paper_id == "2212.10544" and papers[0].abstract.startswith("Transformers have been essential")
    assert papers[-1].paper_id == "2204.05862"
    assert [(p.paper_id, p.version) for p in papers if p.version] == [
        ("2210.13966", "v3"), ("2205.12674", "v3"), ("2304.11477", "v1"), ("2212.14024", "v2")]
    assert all(p.url == f"https://arxiv.org/abs/{p.paper_id}" for p in papers)
    assert len({p.paper_id for p in papers}) == 100


def test_a_dotted_name_the_abstract_repeats_is_not_split_as_a_glued_sentence_end():
    papers, _ = _read(SEED_FILES["001"])
    text = next(p.abstract for p in papers if "TaskMatrix" in p.abstract)
    assert "we introduce TaskMatrix.AI as a new AI ecosystem" in text and "TaskMatrix. AI" not in text


@pytest.mark.parametrize("paper_id, note, resumed", [
    ("2212.10560", "Unless otherwise specified", "on par with the performance of, which was trained with private"),
    ("2210.11416", "Public checkpoints", "Flan-T5 checkpoints, which achieve strong few-shot performance"),
    ("2204.07705", "super-sized expansion", "Super-NaturalInstructions, a benchmark of 1,616 diverse NLP tasks")])
def test_a_footnote_inlined_mid_sentence_is_dropped_and_the_sentence_resumes(paper_id, note, resumed):
    papers, _ = _read(SEED_FILES["001"])
    text = next(p.abstract for p in papers if p.paper_id == paper_id)
    assert note not in text and resumed in text


@pytest.mark.parametrize("seed, glued, repaired", [
    ("001", "thatinstruction", "We show that instruction tuning"),
    ("001", "notalignedwith", "these models are not aligned with their users"),
    ("001", "humansandcurrent", "humans and current"),
    ("001", "intowherefactual", "into where factual"),
    ("001", "withstanding", "withstanding"),  # words that merely start with a function word stay whole
    ("001", "hypothesize", "hypothesize"),
    ("000", "infeasible", "infeasible"),
])
def test_lower_case_words_a_page_glued_together_are_separated(seed, glued, repaired):
    """Italics and links lose their spaces on the copied pages: "We show thatinstruction tuning"."""
    papers, _ = _read(SEED_FILES[seed])
    text = " ".join(p.abstract for p in papers)
    assert repaired in text and (glued == repaired or glued not in text)


def test_papers_page_strips_the_glued_subscribe():
    papers, _ = _read(SEED_FILES["003"])
    assert papers[0].title == "Few-Shot Bot: Prompt-Based Learning for Dialogue Systems"
    assert papers[0].abstract.startswith("Learning to converse using only a few examples")
    assert papers[-1].title == "TruthfulQA: Measuring How Models Mimic Human Falsehoods"
    assert "Sabiá: Portuguese Large Language Models" in {p.title for p in papers}


def test_daily_papers_page_keeps_dates_with_a_year_only():
    papers, _ = _read(SEED_FILES["004"])
    by_title = {p.title: p for p in papers}
    assert papers[0].title == "Expert-level validation of AI-generated medical text with scalable language models"
    assert papers[0].date == ""  # "Jul 3": no year on the page, so no guess
    assert by_title["Eliminating Position Bias of Language Models: A Mechanistic Approach"].date == "2024-07-01"
    assert by_title["Chain of Code: Reasoning with a Language Model-Augmented Code Emulator"].date == "2023-12-07"
    assert by_title["VOCABTRIM: Vocabulary Pruning for Efficient Speculative Decoding in LLMs"].date == ""
    assert Counter(bool(p.date) for p in papers) == Counter({True: 18, False: 4})
    alol = by_title["Improving Language Models with Advantage-based Offline Policy Gradients"]
    assert alol.abstract.startswith("Language Models (LMs) achieve")  # the scraped "Abstract" label is gone


def test_seed_directory_has_180_unique_papers_and_the_known_duplicates():
    papers, rejected = _read(SEEDS)
    assert rejected == [] and len(papers) == 184
    groups = Counter(p.fingerprint for p in papers)
    assert len(groups) == 180
    pairs = sorted(sorted(p.title or p.arxiv_id for p in papers if p.fingerprint == fp)
                   for fp, n in groups.items() if n == 2)
    assert pairs == [["", "Augmenting Autotelic Agents with Large Language Models"],
                     ["2210.07229", "Mass-Editing Memory in a Transformer"],
                     ["Few-Shot Bot: Prompt-Based Learning for Dialogue Systems"] * 2,
                     ["Redco: A Lightweight Tool to Automate Distributed Training of LLMs on Any GPU/TPUs"] * 2]
    mass = [p.abstract for p in papers if p.fingerprint == next(q.fingerprint for q in papers if q.paper_id == "2210.07229")]
    assert mass[0] != mass[1]  # the pair differs only by "https://" in a URL


def test_beir_corpus_reads_every_record():
    papers, rejected = _read(SHARED / "data" / "scifact" / "corpus.jsonl")
    assert rejected == [] and len(papers) == 5183
    first = papers[0]
    assert (first.paper_id, first.arxiv_id) == ("4983", "")
    assert first.title.startswith("Microstructural development of human newborn cerebral white matter")
    assert first.abstract.startswith("Alterations of the architecture of cerebral white matter")


def test_beir_directory_skips_queries_and_qrels():
    papers, rejected = _read(SHARED / "data" / "pubmedqa")
    assert rejected == [] and len(papers) == 1000
    assert {p.sources for p in papers} == {("corpus.jsonl",)}



def test_a_directory_walk_skips_an_index_inside_it(tmp_path):
    # `python -m ingest .` where ./index already exists must not read the index's own files as papers
    (tmp_path / "papers.jsonl").write_text(json.dumps({"id": "2305.14314", "abstract": "QLoRA finetunes."}) + "\n")
    index = tmp_path / "index"
    (index / "keyword").mkdir(parents=True)
    (index / "chroma.sqlite3").write_bytes(b"SQLite format 3\x00")
    (index / "keyword" / "index.json").write_text(json.dumps({"id": "x", "abstract": "not a paper"}))
    papers, rejected = _read(tmp_path)
    assert [p.paper_id for p in papers] == ["2305.14314"] and rejected == []

RECORDS = [
    {"id": "2305.14314v2", "title": "QLoRA", "abstract": "We present QLoRA,\nan efficient finetuning approach.",
     "authors": ["Tim Dettmers", "Artidoro Pagnoni"], "published": "2023-05-23", "categories": "cs.LG cs.CL",
     "url": "https://arxiv.org/abs/2305.14314"},
    {"paperId": "s2-abc", "title": "A &amp; B", "summary": "Summary <i>text</i>.", "authors": "Ann Lee, Bo Chen",
     "date": "May 23, 2023", "categories": "cs.IR", "doi": "10.1000/xyz"},
    {"_id": "4983", "title": "Plain", "text": "Body text.", "authors": [], "year": 2019},
]


def _write(path, fmt: str) -> None:
    flat = [{k: (", " if k == "authors" else " ").join(v) if isinstance(v, list) else v for k, v in r.items()}
            for r in RECORDS]
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    elif fmt == "json":
        path.write_text(json.dumps(RECORDS, indent=2))
    elif fmt == "wrapped-json":
        path.write_text(json.dumps({"count": 3, "papers": RECORDS}))
    elif fmt in ("csv", "tsv"):
        names = sorted({k for r in flat for k in r})
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, names, delimiter="," if fmt == "csv" else "\t")
            writer.writeheader()
            writer.writerows(flat)
    elif fmt == "parquet":
        names = list(dict.fromkeys(k for r in RECORDS for k in r))  # from_pylist takes columns from row 1
        rows = [{**{k: r.get(k) for k in names},
                 "authors": r["authors"] if isinstance(r["authors"], list) else r["authors"].split(", ")}
                for r in RECORDS]
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=1)  # several row groups


@pytest.mark.parametrize("fmt, name", [("jsonl", "p.jsonl"), ("jsonl", "p.json"), ("json", "p.json"),
                                       ("wrapped-json", "p.json"), ("csv", "p.csv"), ("csv", "p.txt"),
                                       ("tsv", "p.tsv"), ("parquet", "p.parquet"), ("parquet", "p.bin")])
def test_tabular_formats_map_the_usual_fields(tmp_path, fmt, name):
    _write(tmp_path / name, fmt)
    papers, rejected = _read(tmp_path / name)
    assert rejected == []
    qlora, s2, beir = papers
    assert (qlora.paper_id, qlora.version, qlora.title, qlora.date) == ("2305.14314", "v2", "QLoRA", "2023-05-23")
    assert qlora.abstract == "We present QLoRA, an efficient finetuning approach."  # multi-line field kept whole
    assert qlora.categories == ("cs.LG", "cs.CL") and qlora.authors[0] == "Tim Dettmers"
    assert (s2.paper_id, s2.title, s2.abstract, s2.date) == ("s2-abc", "A & B", "Summary text.", "2023-05-23")
    assert s2.url == "https://doi.org/10.1000/xyz" and s2.authors == ("Ann Lee", "Bo Chen")
    assert (beir.paper_id, beir.abstract, beir.date) == ("4983", "Body text.", "2019")
    assert all(p.sources == (name,) for p in papers)


def _snapshot_line(n: int) -> str:
    year = 2007 + n % 18
    return json.dumps({
        "id": f"{year % 100:02d}{n % 12 + 1:02d}.{n:05d}", "submitter": "A. Person", "authors": "A. Person and B. Other",
        "title": f"Paper {n}", "comments": "10 pages", "journal-ref": None, "doi": None, "report-no": None,
        "categories": ["cs.CL cs.LG", "hep-th", "cs.CLX math.CO", "stat.ML cs.CL"][n % 4], "license": None,
        "abstract": f"  Abstract of paper {n}: " + "words " * 150 + "\n",
        "versions": [{"version": "v1", "created": f"Mon, 2 Apr {year} 19:18:42 GMT"},
                     {"version": "v2", "created": f"Tue, 3 Apr {year} 10:00:00 GMT"}],
        "update_date": f"{year + (n % 3 == 0)}-06-01",
        "authors_parsed": [["Person", "A.", ""], ["Other", "B.", ""]]})


SNAPSHOT_SIZE = 4000


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    path = tmp_path_factory.mktemp("snap") / "arxiv-metadata-oai-snapshot.json"
    with path.open("w") as handle:
        for n in range(SNAPSHOT_SIZE):
            handle.write(_snapshot_line(n) + "\n")
    return path


def test_arxiv_snapshot_fields(snapshot):
    first = next(read_source(str(snapshot)))
    assert (first.paper_id, first.version, first.date) == ("0701.00000", "v2", "2007-04-02")
    assert first.authors == ("A. Person", "B. Other") and first.categories == ("cs.CL", "cs.LG")


def test_arxiv_snapshot_filters_on_category_and_update_date(snapshot):
    papers, _ = _read(snapshot, category="cs.CL", since="2023-01-01")
    expected = [n for n in range(SNAPSHOT_SIZE) if n % 4 in (0, 3) and 2007 + n % 18 + (n % 3 == 0) >= 2023]
    assert [p.title for p in papers] == [f"Paper {n}" for n in expected]
    assert all("cs.CL" in p.categories for p in papers)  # "cs.CLX" is not cs.CL
    assert len(_read(snapshot, category="cs")[0]) == SNAPSHOT_SIZE * 3 // 4
    assert len(_read(snapshot, format="arxiv-snapshot")[0]) == SNAPSHOT_SIZE


def test_arxiv_snapshot_streams_in_constant_memory(tmp_path):
    path = tmp_path / "big-snapshot.json"
    with path.open("w") as handle:
        for n in range(1500):  # 1,500 records of 10 KB: a 15 MB file
            handle.write(json.dumps({**json.loads(_snapshot_line(n)), "abstract": f"Paper {n}. " + "x" * 10_000}) + "\n")
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_source(str(path)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 1500
    assert peak < 1_500_000, peak  # a few records' worth, never the file


def test_filters_on_pages_drop_papers_without_the_field():
    assert len(_read(SEED_FILES["004"], since="2024-01-01")[0]) == 4
    assert _read(SEED_FILES["004"], category="cs.CL")[0] == []  # pages have no categories


def test_forced_format_overrides_detection(tmp_path):
    path = tmp_path / "papers.data"
    path.write_text("alpha beta\ngamma delta\n")
    assert sniff_format(path) == (None, "unrecognised format: expected a seed page, JSON Lines, JSON, CSV, TSV "
                                        "or Parquet (--format forces one)")
    assert [p.abstract for p in _read(path, format="abstract-lines")[0]] == ["alpha beta", "gamma delta"]
    jsonl = tmp_path / "records.txt"
    jsonl.write_text(json.dumps(RECORDS[0]) + "\n")
    assert sniff_format(jsonl) == ("jsonl", "") and sniff_format(jsonl, "json") == ("json", "")
    assert _read(jsonl, format="json")[0][0].paper_id == "2305.14314"


def test_options_are_validated():
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        ReadOptions(format="xml")
    with pytest.raises(ValueError, match="ISO date"):
        ReadOptions(since="last week")
    assert ReadOptions(since="2023-01-01").keeps_date("2023") and not ReadOptions(since="2023-01-01").keeps_date("")
