"""Remote sources against stand-in services on 127.0.0.1: the arXiv API and the Hugging Face Hub.

The ``hf:`` tests run the reader in a child process: huggingface_hub reads
HF_ENDPOINT and HF_HUB_OFFLINE when it is imported, and this test session runs
with HF_HUB_OFFLINE=1 (conftest) so nothing else can reach out by accident.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.records import Paper
from ingest.sources import ReadOptions, Rejection, read_source
from models.errors import UnavailableError
from tests.conftest import ROOT
from tests.fixtures.standins import ArxivStandin, HubStandin, serve

DELAY = 0.3  # the tests' arXiv delay: short, but long enough to see the limiter work


@pytest.fixture()
def arxiv():
    service = ArxivStandin()
    with serve(service) as base:
        service.base = base
        yield service


def _options(arxiv, **kw) -> ReadOptions:
    kw.setdefault("arxiv_delay_s", DELAY)
    return ReadOptions(arxiv_base_url=arxiv.base + "/api/query", **kw)


def test_search_is_paged_and_rate_limited(arxiv):
    records = list(read_source("arxiv:retrieval augmented", _options(arxiv, page_size=2)))
    assert [r.paper_id for r in records] == ["2005.11401", "2002.08909", "2112.04426", "2310.11511", "2312.10997"]
    sent = [params for _, params in arxiv.requests]
    assert [p["start"] for p in sent] == [["0"], ["2"], ["4"]]
    assert [p["max_results"] for p in sent] == [["2"], ["2"], ["1"]]  # stops at the feed's totalResults
    assert sent[0]["search_query"] == ["all:retrieval AND all:augmented"]
    assert all(gap >= DELAY for gap in arxiv.gaps()), arxiv.gaps()


def test_search_records_are_normalised(arxiv):
    rag, _, retro, selfrag, _ = read_source("arxiv:retrieval augmented", _options(arxiv, page_size=2))
    assert rag == Paper(paper_id="2005.11401", title="Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
                        abstract=rag.abstract, authors=("Patrick Lewis", "Ethan Perez", "Aleksandra Piktus",
                                                        "Douwe Kiela"),
                        date="2020-05-22", categories=("cs.CL", "cs.LG"), url="https://arxiv.org/abs/2005.11401",
                        version="v4", arxiv_id="2005.11401")
    assert rag.abstract.startswith("Large pre-trained language models have been shown to store factual knowledge in")
    assert rag.sources == ("arxiv:retrieval augmented",)
    assert "25× fewer parameters" in retro.abstract  # entity decoded
    assert selfrag.title == "Self-RAG: Learning to Retrieve, Generate, and Critique through Self-Reflection"


def test_max_results_caps_a_search(arxiv):
    records = list(read_source("arxiv:retrieval augmented", _options(arxiv, page_size=2, max_results=3)))
    assert len(records) == 3
    assert [p["max_results"] for _, p in arxiv.requests] == [["2"], ["1"]]


def test_filters_apply_to_arxiv_results(arxiv):
    since = list(read_source("arxiv:retrieval augmented", _options(arxiv, page_size=2, since="2023-01-01")))
    assert [p.paper_id for p in since] == ["2310.11511", "2312.10997"]
    ai = list(read_source("arxiv:retrieval augmented", _options(arxiv, page_size=2, category="cs.AI")))
    assert [p.paper_id for p in ai] == ["2310.11511", "2312.10997"]
    assert "cat:cs.AI" in arxiv.requests[-1][1]["search_query"][0]


def test_id_list_keeps_versions_and_reports_unknown_ids(arxiv):
    spec = "arxiv:2305.14314, hep-th/9901001v2, 2401.99999"
    qlora, old, missing = read_source(spec, _options(arxiv))
    assert arxiv.requests[0][1]["id_list"] == ["2305.14314,hep-th/9901001v2,2401.99999"]
    assert (qlora.paper_id, qlora.version, qlora.date, qlora.categories) == ("2305.14314", "v1", "2023-05-23", ("cs.LG",))
    assert qlora.authors[0] == "Tim Dettmers" and qlora.title == "QLoRA: Efficient Finetuning of Quantized LLMs"
    assert (old.paper_id, old.version, old.url) == ("hep-th/9901001", "v2", "https://arxiv.org/abs/hep-th/9901001")
    assert old.abstract.endswith("string perturbation theory at one loop.")  # markup removed
    assert missing == Rejection(spec, None, "arXiv has no paper 2401.99999")


def test_query_the_api_refuses_is_a_rejection(arxiv):
    assert list(read_source("arxiv:ti:", _options(arxiv))) == [
        Rejection("arxiv:ti:", None, "arXiv API refused the query: malformed query: ti:")]


def test_busy_answers_are_retried_after_the_delay(arxiv):
    arxiv.fail_next = [503]
    records = list(read_source("arxiv:2305.14314", _options(arxiv)))
    assert [r.paper_id for r in records if isinstance(r, Paper)] == ["2305.14314", "hep-th/9901001"]
    assert len(arxiv.requests) == 2 and arxiv.gaps()[0] >= DELAY


def test_a_service_that_stays_busy_is_unavailable(arxiv):
    arxiv.fail_next = [503] * 4
    with pytest.raises(UnavailableError, match=r"arXiv API is not answering \(HTTP 503"):
        list(read_source("arxiv:2305.14314", _options(arxiv, arxiv_delay_s=0.01)))


def test_an_answer_that_is_not_atom_is_unavailable(arxiv):
    options = ReadOptions(arxiv_base_url=arxiv.base + "/captive/portal", arxiv_delay_s=0.01)
    with pytest.raises(UnavailableError, match="not an Atom feed"):
        list(read_source("arxiv:retrieval", options))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("base", [f"http://127.0.0.1:{_closed_port()}/api/query", "http://arxiv.invalid/api/query"],
                         ids=["connection-refused", "dns-failure"])
def test_offline_arxiv_fails_at_once(base):
    records = read_source("arxiv:2305.14314", ReadOptions(arxiv_base_url=base, arxiv_delay_s=0.0, timeout_s=5))
    with pytest.raises(UnavailableError, match="arXiv API cannot be reached"):
        next(records)


def test_empty_arxiv_spec_is_a_rejection():
    assert list(read_source("arxiv:  ")) == [
        Rejection("arxiv:  ", None, "empty arXiv query: use arxiv:<words> or arxiv:<id>[,<id>...]")]


# --- hf: through `datasets`, in a child process -------------------------------------------------

_CHILD = """
import json, sys
from ingest.sources import read_source, ReadOptions
from models.errors import UnavailableError
try:
    for r in read_source(sys.argv[1], ReadOptions(max_results=int(sys.argv[2]) if len(sys.argv) > 2 else None)):
        print(json.dumps({"paper": [r.paper_id, r.title, r.sources[0]]} if hasattr(r, "paper_id")
                         else {"rejection": [r.source, r.line, r.reason]}))
except UnavailableError as exc:
    print(json.dumps({"unavailable": str(exc)}))
"""


def _parquet(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def _read_in_child(spec: str, endpoint: str, tmp_path, offline: str = "0", *args: str) -> list[dict]:
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": offline, "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    done = subprocess.run([sys.executable, "-c", _CHILD, spec, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def hub():
    train = [{"arxiv_id": "2305.14314v2", "title": "QLoRA", "abstract": "QLoRA finetunes 4-bit models."},
             {"arxiv_id": "2106.09685", "title": "LoRA", "abstract": ""},
             {"arxiv_id": "2005.11401", "title": "RAG", "abstract": "Retrieval-augmented generation."}]
    files = {"README.md": b"---\nlicense: cc0-1.0\n---\n# Papers\n",
             "data/train-00000-of-00001.parquet": _parquet(train),
             "data/test-00000-of-00001.parquet": _parquet([{"arxiv_id": "x1", "title": "T", "abstract": "Held out."}]),
             # a split whose second file has other columns: datasets cannot cast it
             "data/mixed-00000-of-00002.parquet": _parquet(train[:1]),
             "data/mixed-00001-of-00002.parquet": _parquet([{"name": "not a paper"}])}
    service = HubStandin("someone/papers", files)
    with serve(service) as base:
        service.base = base
        yield service


def test_hf_dataset_is_streamed_through_datasets(hub, tmp_path):
    out = _read_in_child("hf:someone/papers", hub.base, tmp_path)
    assert out[:3] == [{"paper": ["2305.14314", "QLoRA", "hf:someone/papers"]},
                       {"rejection": ["hf:someone/papers", 2, "record 2106.09685 has no abstract"]},
                       {"paper": ["2005.11401", "RAG", "hf:someone/papers"]}]
    assert any("/resolve/" in p and p.endswith("train-00000-of-00001.parquet") for p in hub.paths)


def test_hf_split_and_max_results(hub, tmp_path):
    assert _read_in_child("hf:someone/papers:test", hub.base, tmp_path)[0] == {"paper": ["x1", "T",
                                                                                       "hf:someone/papers:test"]}
    assert len(_read_in_child("hf:someone/papers", hub.base, tmp_path, "0", "1")) == 1
    unknown = _read_in_child("hf:someone/papers:validation", hub.base, tmp_path)[0]["rejection"]
    assert unknown[0] == "hf:someone/papers:validation" and "Bad split: validation" in unknown[2]
    first, broken = _read_in_child("hf:someone/papers:mixed", hub.base, tmp_path)
    assert first == {"paper": ["2305.14314", "QLoRA", "hf:someone/papers:mixed"]}
    assert broken["rejection"][:2] == ["hf:someone/papers:mixed", 2]
    assert broken["rejection"][2].startswith("cannot read the dataset's rows from here on: Couldn't cast")


def test_hf_unknown_dataset_is_unavailable(hub, tmp_path):
    out = _read_in_child("hf:someone/nothing", hub.base, tmp_path)
    assert "dataset someone/nothing does not exist on the Hub" in out[0]["unavailable"]


@pytest.mark.parametrize("offline", ["1", "0"], ids=["HF_HUB_OFFLINE", "connection-refused"])
def test_hf_offline_fails_at_once(tmp_path, offline):
    out = _read_in_child("hf:someone/papers", f"http://127.0.0.1:{_closed_port()}", tmp_path, offline)
    assert ("offline mode is on" if offline == "1" else "Connection refused") in out[0]["unavailable"]
    assert len(out) == 1  # nothing but the error
