"""app.py as a server: first start, the /ask API through gradio_client, settings, Space behaviour.

Two real servers: a local one started on an empty index (it ingests the samples first)
with a hub model that cannot be had offline, and a "Space" one (``SPACE_ID`` set) that
fetches its default model from a stand-in hub on 127.0.0.1 on first start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from gradio_client import Client

import app
from models.llm import DEFAULT_MODEL
from models.tokens import BUNDLED_DIR
from tests.app_server import ROOT, SHARED, serve_app
from tests.fixtures.standins import ModelHubStandin, serve

QUESTION = "How can a chatbot learn to converse from only a few examples?"
SAMPLE = ROOT / "data" / "samples" / "003_eabbeabbe19b3830.txt"  # 36 titled papers: a quick first start
JSON_KEYS = {"question", "answer", "mode", "abstained", "citations", "sources", "timings"}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    shutil.copy(SAMPLE, folder)
    return folder


def _private_env(tmp_path_factory, name: str) -> dict[str, str]:
    """Caches and temp files of one server inside pytest's tmp dir."""
    root = tmp_path_factory.mktemp(name)
    return {"HF_HOME": str(root / "hf"), "GRADIO_TEMP_DIR": str(root / "gradio")}


@pytest.fixture(scope="module")
def local(tmp_path_factory, samples):
    """Empty index, ``--model default`` while offline: extractive answers with a note."""
    index = tmp_path_factory.mktemp("local") / "index"
    env = {**_private_env(tmp_path_factory, "local-env"), "HF_HUB_OFFLINE": "1"}
    with serve_app(["--index", str(index), "--samples", str(samples), "--model", "default"], env=env) as server:
        server.index = index
        yield server


def test_first_start_ingests_the_samples_with_progress(local):
    out = local.output
    assert f"index at {local.index} is empty; indexing the sample papers in" in out
    assert "  indexing: 32 papers read" in out  # progress per batch of 32
    assert "added 36" in out and out.index("added 36") < out.index("serving on")
    config = json.loads(_get(local.url + "/config"))
    notice = next(c["props"]["value"] for c in config["components"] if c["props"].get("elem_id") == "notice")
    assert "First start: indexed 36 sample papers" in notice


def test_a_model_that_cannot_be_had_falls_back_visibly(local):
    assert "is not downloaded yet and cannot be downloaded: offline mode is on (HF_HUB_OFFLINE)." in local.output
    notice = next(c["props"]["value"] for c in json.loads(_get(local.url + "/config"))["components"]
                  if c["props"].get("elem_id") == "notice")
    assert "Answering extractively" in notice


def test_ask_api_returns_the_cli_json_with_citations(local):
    client = Client(local.url, verbose=False)
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/ask"]
    result = client.predict(QUESTION, api_name="/ask")
    assert set(result) == JSON_KEYS and result["mode"] == "extractive" and not result["abstained"]
    assert result["citations"] and {c["paper_id"] for c in result["citations"]} <= {s["paper_id"] for s in result["sources"]}
    assert any("Few-Shot Bot" in c["title"] for c in result["citations"])
    for citation in result["citations"]:
        assert set(citation) == {"n", "paper_id", "title", "url", "supporting_sentence"} and citation["supporting_sentence"]

    cli = subprocess.run([sys.executable, "-m", "chat", "ask", "--json", "--index", str(local.index), "--model", "none",
                          QUESTION], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TIKTOKEN_CACHE_DIR": str(SHARED / "tiktoken"), "HF_HUB_OFFLINE": "1"})
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout.splitlines()[0])
    assert set(expected["timings"]) == set(result["timings"])
    assert {k: v for k, v in result.items() if k != "timings"} == {k: v for k, v in expected.items() if k != "timings"}


def test_ask_api_applies_filters_and_reports_bad_input(local):
    client = Client(local.url, verbose=False)
    dated = client.predict(QUESTION, 3, 2024, None, "", api_name="/ask")
    assert dated["abstained"] and not dated["sources"]  # the sample pages carry no dates: nothing passes the filter
    assert len(client.predict(QUESTION, 2, api_name="/ask")["sources"]) <= 2
    with pytest.raises(Exception, match="year_min 2024 is after year_max 2020"):
        client.predict(QUESTION, 5, 2024, 2020, "", api_name="/ask")
    with pytest.raises(Exception, match="question is empty"):
        client.predict("  ", api_name="/ask")


def test_generation_and_retrieval_use_separate_concurrency_groups(local):
    from webapp.services import Services
    from webapp.ui import build_ui

    settings = app.parse_args(["--index", str(local.index)], env={})
    demo, options = build_ui(Services.start(settings, log=lambda line: None))
    groups = {fn.api_name: (fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values()}
    assert groups["ask"] == groups["respond"] == groups["respond_1"] == ("generate", 1)
    assert groups["search"][0] == groups["search_1"][0] == "retrieval" and groups["search"][1] > 1
    assert groups["add_papers"] == ("ingest", 1)
    assert "pc-badge" in options["css"]


@pytest.mark.parametrize("argv, env, expected", [
    ([], {}, dict(host="127.0.0.1", port=7860, index="index", models=(DEFAULT_MODEL,))),
    (["--model", "none"], {"PAPERCHAT_MODEL": "z.gguf"}, dict(models=())),
    ([], {"PAPERCHAT_MODEL": "none"}, dict(models=())),
    (["--host", "0.0.0.0", "--port", "9000", "--index", "/x"], {"GRADIO_SERVER_PORT": "8000"},
     dict(host="0.0.0.0", port=9000, index="/x")),
    ([], {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8000", "PAPERCHAT_INDEX": "/i",
          "PAPERCHAT_MODEL": "a.gguf, b/c:d.gguf"}, dict(host="0.0.0.0", port=8000, index="/i", models=("a.gguf", "b/c:d.gguf"))),
    (["--model", "x.gguf", "--model", "y.gguf"], {"PAPERCHAT_MODEL": "z.gguf"}, dict(models=("x.gguf", "y.gguf"))),
])
def test_settings_come_from_flags_then_environment(argv, env, expected):
    settings = app.parse_args(argv, env=env)
    assert {k: getattr(settings, k) for k in expected} == expected


def test_on_a_space_everything_goes_to_a_writable_directory():
    settings = app.parse_args([], env={"SPACE_ID": "someone/paperchat"})
    root = settings.space_dir
    assert root in ("/data", "/tmp/paperchat") and settings.index == os.path.join(root, "index")
    assert settings.models == (DEFAULT_MODEL,) and settings.host == "0.0.0.0"
    env: dict[str, str] = {}
    app.prepare_environment(settings, env)
    assert all(env[name].startswith(root) for name in ("HF_HOME", "GRADIO_TEMP_DIR"))
    assert env["TIKTOKEN_CACHE_DIR"] == str(BUNDLED_DIR)  # read-only use: the file ships with the repo


def test_a_space_fetches_its_default_model_on_first_start(tmp_path_factory, samples):
    hub = ModelHubStandin({DEFAULT_MODEL: (SHARED / "models" / "stories260K.gguf").read_bytes()})  # tiny, same name
    index = tmp_path_factory.mktemp("space") / "index"
    with serve(hub) as endpoint:
        env = {**_private_env(tmp_path_factory, "space-env"), "SPACE_ID": "someone/paperchat", "HF_HUB_OFFLINE": "0",
               "HF_ENDPOINT": endpoint, "PAPERCHAT_INDEX": str(index)}
        with serve_app(["--samples", str(samples)], env=env) as space:
            assert f"loading model {DEFAULT_MODEL}" in space.output and "model download:" in space.output
            assert any(r.startswith("GET /Qwen/") for r in hub.requests)
            result = Client(space.url, verbose=False).predict(QUESTION, api_name="/ask")
    assert result["mode"] == "llm" and set(result) == JSON_KEYS  # (the tiny model writes stories, not answers)
    assert os.listdir(env["HF_HOME"])  # the model went to the cache the Space may write to


def _get(url: str) -> str:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        return response.read().decode()
