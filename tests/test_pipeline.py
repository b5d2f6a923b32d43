"""The ingest pipeline end to end with the real parsers, embedder and Chroma: seeds,
duplicates across files, re-runs, new versions, id moves, bad input."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from ingest.chunk import chunk_paper
from ingest.dedupe import join
from ingest.pipeline import IngestOptions, IngestProgress, ingest
from ingest.records import Paper, make_paper
import socket

from ingest.source_types import ReadOptions
from ingest.sources import read_source
from ingest.store import Store, StoreConfig
from tests.conftest import SEEDS

SEED_FILES = sorted(p.name for p in SEEDS.iterdir())
QLORA = ("We present QLoRA, an efficient finetuning approach that reduces memory usage enough to finetune a 65B "
         "parameter model on a single 48GB GPU while preserving full 16-bit finetuning task performance.")
ORCA = "Orca is a 13-billion parameter model that learns to imitate the reasoning process of large foundation models."


def write_jsonl(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def snapshot(store: Store) -> tuple[set, set]:
    """Everything that must match between two indexes: papers with hashes, chunks with texts."""
    return ({(p.paper_id, p.content_hash) for p in store.iter_papers()},
            {(cid, text) for cid, _, text in store.iter_chunks()})


@pytest.fixture
def new_store(tmp_path, embedder):
    def make(name: str = "index") -> Store:
        return Store.open(StoreConfig(path=str(tmp_path / name)), embedder.name, embedder.dim)
    return make


@pytest.fixture(scope="module")
def seed_records() -> dict[str, list[Paper]]:
    by_file = defaultdict(list)
    for record in read_source(str(SEEDS)):
        assert isinstance(record, Paper), record
        by_file[record.sources[0]].append(record)
    return by_file


@pytest.mark.parametrize("seed", SEED_FILES)
def test_every_record_of_every_seed_file_is_in_the_index(seed, seed_index, seed_records):
    store = Store.open_existing(seed_index)
    records = seed_records[seed]
    assert len(records) >= 10
    found = store.papers_by_fingerprint([r.fingerprint for r in records])
    for record in records:
        [paper] = found[record.fingerprint]
        assert seed in paper.sources
        assert paper.paper_id == record.paper_id or record.paper_id.startswith("doc-")


def test_seed_report_counts_unique_papers(seed_ingest, seed_records):
    report = seed_ingest.report
    records = [r for rs in seed_records.values() for r in rs]
    unique = len({r.fingerprint for r in records})
    assert report.rejected == [] and report.papers_parsed == len(records)
    assert (report.added, report.updated, report.unchanged) == (unique, 0, 0)
    assert report.merged == len(records) - unique > 0
    store = Store.open_existing(seed_ingest.config)
    assert store.stats().papers == report.papers_in_index == unique
    expected_chunks = {c.chunk_id for p in store.iter_papers() for c in chunk_paper(p)}
    assert store.chunk_ids() == expected_chunks and report.chunks_in_index == len(expected_chunks)


def test_cross_file_duplicates_become_one_paper_with_the_best_of_both(seed_index, seed_records):
    files_of = defaultdict(set)
    records_of = defaultdict(list)
    for name, records in seed_records.items():
        for r in records:
            files_of[r.fingerprint].add(name)
            records_of[r.fingerprint].append(r)
    shared = [fp for fp, files in files_of.items() if len(files) > 1]
    assert len(shared) >= 4, "the seeds hold papers that appear in two files"
    store = Store.open_existing(seed_index)
    found = store.papers_by_fingerprint(shared)
    for fp in shared:
        [paper] = found[fp]
        assert set(paper.sources) == files_of[fp]
        explicit = {r.paper_id for r in records_of[fp] if not r.paper_id.startswith("doc-")}
        assert paper.paper_id in (explicit or {records_of[fp][0].paper_id})
        titles = {r.title for r in records_of[fp] if r.title}
        assert paper.title in titles if titles else paper.title == ""
        assert paper.date == max((r.date for r in records_of[fp]), key=lambda d: (len(d), d))
    assert any(not found[fp][0].paper_id.startswith("doc-") and found[fp][0].title for fp in shared), \
        "an arXiv id from the dump and a title from a page meet in one paper"


def test_rerunning_the_same_ingest_changes_nothing(seed_ingest, embedder):
    store = Store.open(seed_ingest.config, embedder.name, embedder.dim)
    before, generation = snapshot(store), store.meta.generation
    first = seed_ingest.report
    again = ingest([str(SEEDS)], store, embedder)
    assert (again.added, again.updated, again.rejected) == (0, 0, [])
    assert again.unchanged == first.added + first.updated and again.merged == first.merged
    assert snapshot(store) == before and store.meta.generation == generation
    assert again.summary().startswith("added 0, updated 0, unchanged ")


def test_a_new_version_replaces_the_abstract(tmp_path, new_store, embedder):
    store = new_store()
    v1 = write_jsonl(tmp_path / "v1.jsonl", [{"id": "2305.14314v1", "title": "QLoRA", "abstract": "Old text."}])
    v2 = write_jsonl(tmp_path / "v2.jsonl", [{"id": "arXiv:2305.14314v2", "abstract": QLORA, "authors": "T. Dettmers"}])
    assert ingest([v1], store, embedder).added == 1
    report = ingest([v2], store, embedder)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 0)
    [paper] = store.iter_papers()
    assert (paper.paper_id, paper.version, paper.abstract, paper.title) == ("2305.14314", "v2", QLORA, "QLoRA")
    assert paper.authors == ("T. Dettmers",)
    texts = [t for _, _, t in store.iter_chunks()]
    assert texts and all("Old text" not in t and t.startswith("QLoRA\nWe present QLoRA") for t in texts)
    stale = ingest([v1], store, embedder)  # the old version again: the newer one stays
    assert (stale.updated, stale.unchanged) == (0, 1) and next(store.iter_papers()).abstract == QLORA


def test_a_changed_abstract_without_versions_replaces_the_old_one(tmp_path, new_store, embedder):
    store = new_store()
    path = tmp_path / "corpus.jsonl"
    ingest([write_jsonl(path, [{"_id": "42", "title": "Orca", "abstract": "Draft abstract."}])], store, embedder)
    report = ingest([write_jsonl(path, [{"_id": "42", "title": "Orca", "abstract": ORCA}])], store, embedder)
    assert report.updated == 1 and store.get_papers(["42"])["42"].abstract == ORCA


def test_a_derived_id_moves_to_the_arxiv_id(tmp_path, new_store, embedder):
    store = new_store()
    page = write_jsonl(tmp_path / "page.jsonl", [{"title": "QLoRA: Efficient Finetuning", "abstract": QLORA}])
    first = ingest([page], store, embedder)
    [doc] = store.iter_papers()
    assert first.added == 1 and doc.paper_id.startswith("doc-")
    dump = write_jsonl(tmp_path / "dump.jsonl", [{"arxiv_id": "2305.14314v1", "abstract": QLORA.replace(",", " ,")}])
    moved = ingest([dump], store, embedder)
    assert (moved.added, moved.updated, moved.merged) == (0, 1, 0)
    [paper] = store.iter_papers()
    assert (paper.paper_id, paper.title, paper.version) == ("2305.14314", "QLoRA: Efficient Finetuning", "v1")
    assert set(paper.sources) == {"page.jsonl", "dump.jsonl"}
    assert store.get_papers([doc.paper_id]) == {} and all(c.startswith("2305.14314#") for c in store.chunk_ids())
    again = ingest([page, dump], store, embedder)
    assert (again.added, again.updated, again.unchanged, again.merged) == (0, 0, 1, 1)


def test_two_explicit_ids_stay_two_papers_and_a_derived_copy_joins_the_arxiv_one(tmp_path, new_store, embedder):
    store = new_store()
    path = write_jsonl(tmp_path / "mixed.jsonl", [
        {"_id": "beir-7", "abstract": ORCA}, {"title": "Orca", "abstract": ORCA}, {"id": "2306.02707", "abstract": ORCA}])
    report = ingest([path], store, embedder)
    assert (report.added, report.merged) == (2, 1)
    papers = {p.paper_id: p for p in store.iter_papers()}
    assert set(papers) == {"beir-7", "2306.02707"}
    assert papers["2306.02707"].title == "Orca" and papers["beir-7"].title == ""


def test_merging_does_not_depend_on_order_or_batch_size(tmp_path, new_store, embedder):
    titled = write_jsonl(tmp_path / "titled.jsonl", [{"title": "QLoRA", "abstract": QLORA},
                                                     {"title": "Orca: Progressive Learning", "abstract": ORCA}])
    ids = write_jsonl(tmp_path / "ids.jsonl", [{"id": "2305.14314v3", "abstract": QLORA + " "},
                                               {"id": "2306.02707", "abstract": ORCA, "date": "2023-06"}])
    bare = write_jsonl(tmp_path / "bare.jsonl", [{"abstract": ORCA.upper(), "date": "2023-06-05",
                                                  "authors": ["S. Mukherjee"]}, {"abstract": QLORA}])
    forward, backward = new_store("forward"), new_store("backward")
    one = ingest([titled, ids, bare], forward, embedder, IngestOptions(batch_size=256))
    two = ingest([bare, ids, titled], backward, embedder, IngestOptions(batch_size=1))
    assert snapshot(forward) == snapshot(backward)
    assert (one.added, one.merged, two.added, two.merged) == (2, 4, 2, 4)
    orca = forward.get_papers(["2306.02707"])["2306.02707"]
    assert (orca.title, orca.date, orca.authors) == ("Orca: Progressive Learning", "2023-06-05", ("S. Mukherjee",))
    rerun = ingest([titled, bare, ids], backward, embedder, IngestOptions(batch_size=2))
    assert (rerun.added, rerun.updated, rerun.unchanged, rerun.merged) == (0, 0, 2, 4)


def test_join_is_commutative_associative_and_idempotent():
    a = make_paper(abstract=QLORA, title="QLoRA", source="a")
    b = make_paper(raw_id="2305.14314v2", abstract=QLORA + "!", date="2023-05", source="b")
    c = make_paper(abstract=QLORA.lower(), date="2023-05-23", authors="T. Dettmers", source="c")
    assert join(a, b) == join(b, a) and join(join(a, b), c) == join(a, join(b, c)) == join(join(c, a), b)
    full = join(join(a, b), c)
    assert join(full, a) == full and join(full, full) == full
    assert (full.paper_id, full.title, full.date, full.version, full.authors) == \
        ("2305.14314", "QLoRA", "2023-05-23", "v2", ("T. Dettmers",))


BAD_INPUTS = {  # file -> (bytes, rejected line or None, reason pattern, good ids in the file)
    "binary.bin": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, None, "binary file", []),
    "malformed.jsonl": (None, 2, "malformed JSON", ["2301.00001", "2301.00002"]),
    "no_abstract.jsonl": (None, 2, "no abstract", ["2301.00003"]),
    "empty.jsonl": (b"", None, "empty file", []),
    "bad_utf8.jsonl": (None, 2, "invalid UTF-8", ["2301.00004", "2301.00005"]),
    "huge_line.jsonl": (None, 2, "line too long", ["2301.00006", "2301.00007"]),
    "deep.jsonl": (None, 2, "nested too deeply", ["2301.00008", "2301.00009"]),  # was a RecursionError: exit 3
    "nul.jsonl": (None, 2, "binary data", ["2301.00010", "2301.00011"]),  # was the whole file
    "shifted.csv": (None, 3, "4 fields where the header has 3", ["2301.00012", "2301.00013"]),  # was shifted
}


def good_line(n: int) -> str:
    return json.dumps({"id": f"2301.{n:05d}", "title": f"Good {n}", "abstract": f"Good abstract {n} on cells."}) + "\n"


def write_bad_inputs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    bodies = {
        "malformed.jsonl": good_line(1) + '{"id": "x", "abstract": \n' + good_line(2),
        "no_abstract.jsonl": good_line(3) + json.dumps({"id": "2301.99999", "title": "No abstract"}) + "\n",
        "bad_utf8.jsonl": good_line(4).encode() + b'{"id": "2301.88888", "abstract": "caf\xe9 \xff"}\n' + good_line(5).encode(),
        "huge_line.jsonl": good_line(6) + json.dumps({"id": "2301.77777", "abstract": "x" * 5_000_000}) + "\n" + good_line(7),
        "deep.jsonl": good_line(8) + '{"id": "2301.66666", "abstract": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
                      + good_line(9),
        "nul.jsonl": good_line(10) + '{"id": "2301.55555", "abstract": "NUL \x00 inside"}\n' + good_line(11),
        "shifted.csv": "id,title,abstract\n2301.00012,Good 12,Good abstract 12 on cells.\n"
                       "2301.44444,A title, with a comma,Its abstract.\n2301.00013,Good 13,Good abstract 13 on cells.\n",
    }
    for name, (raw, *_rest) in BAD_INPUTS.items():
        content = raw if raw is not None else bodies[name]
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, embedder):
    folder = write_bad_inputs(tmp_path_factory.mktemp("bad") / "inputs")
    store = Store.open(StoreConfig(path=str(tmp_path_factory.mktemp("bad_index"))), embedder.name, embedder.dim)
    return folder, store, ingest([str(folder)], store, embedder)


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_reported_with_file_line_reason_and_good_records_kept(name, bad_run):
    folder, store, report = bad_run
    _, line, reason, good = BAD_INPUTS[name]
    mine = [r for r in report.rejected if Path(r.source).name == name]
    assert len(mine) == 1, report.rejected
    assert (mine[0].source, mine[0].line) == (str(folder / name), line) and reason in mine[0].reason
    assert set(store.get_papers(good)) == set(good)


def test_bad_input_loses_no_good_record(bad_run):
    _, store, report = bad_run
    good = sorted(i for *_, ids in BAD_INPUTS.values() for i in ids)
    assert sorted(p.paper_id for p in store.iter_papers()) == good
    assert report.added == len(good) and len(report.rejected) == len(BAD_INPUTS)


def test_progress_reports_running_totals(tmp_path, new_store, embedder):
    path = write_jsonl(tmp_path / "five.jsonl", [{"id": f"2301.0000{i}", "abstract": f"Abstract {i}."} for i in range(5)]
                       + [{"title": "none"}])
    seen: list[IngestProgress] = []
    report = ingest([path], new_store(), embedder, IngestOptions(batch_size=2), progress=seen.append)
    assert [p.papers_parsed for p in seen] == [2, 4, 5]
    assert seen[-1] == IngestProgress(5, 1, 5, report.chunks_embedded) and report.chunks_embedded == 5


def test_bad_arguments_are_value_errors(new_store, embedder):
    with pytest.raises(ValueError):
        IngestOptions(batch_size=0)
    with pytest.raises(ValueError):
        ingest(str(SEEDS), new_store(), embedder)  # type: ignore[arg-type]


def test_an_unreachable_remote_source_is_reported_and_the_others_still_ingested(tmp_path, new_store, embedder):
    with socket.socket() as sock:  # a port nobody listens on: the arXiv API "offline"
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/api/query"
    path = write_jsonl(tmp_path / "one.jsonl", [{"id": "2305.14314", "title": "QLoRA", "abstract": QLORA}])
    options = IngestOptions(read=ReadOptions(arxiv_base_url=closed, arxiv_delay_s=0.0, timeout_s=5))
    report = ingest(["arxiv:1706.03762", path], new_store(), embedder, options)
    assert report.added == 1 and report.papers_in_index == 1
    [rejection] = report.rejected
    assert rejection.source == "arxiv:1706.03762" and "cannot be reached" in rejection.reason