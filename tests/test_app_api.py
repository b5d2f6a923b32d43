"""app.py as a server: first start in the background, the /ask API through gradio_client, settings,
conversations across a server restart, and Space behaviour.

Servers: a local one started on an empty index (it indexes the 180 sample papers in the
background while the page is served) with a hub model that cannot be had offline; one
restarted on the same port to show conversations surviving it; and a "Space" one
(``SPACE_ID`` set) that fetches its default model from a stand-in hub on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from gradio_client import Client

import app
from models.llm import DEFAULT_MODEL
from models.tokens import BUNDLED_DIR
from tests.app_server import ROOT, SHARED, chromium, free_port, serve_app, wait_for_line
from tests.fixtures.standins import ModelHubStandin, serve

QUESTION = "How can a chatbot learn to converse from only a few examples?"
SAMPLES = ROOT / "data" / "samples"
SMALL_SAMPLE = SAMPLES / "003_eabbeabbe19b3830.txt"  # 36 titled papers: a quick first start for the Space
FIRST_START_DONE = "First start: indexed"


@pytest.fixture(scope="module")
def small_samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    shutil.copy(SMALL_SAMPLE, folder)
    return folder


def _private_env(tmp_path_factory, name: str) -> dict[str, str]:
    """Caches and temp files of one server inside pytest's tmp dir."""
    root = tmp_path_factory.mktemp(name)
    return {"HF_HOME": str(root / "hf"), "GRADIO_TEMP_DIR": str(root / "gradio")}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """Empty index, the sample papers, ``--model default`` while offline: extractive answers with a note."""
    index = tmp_path_factory.mktemp("local") / "index"
    env = {**_private_env(tmp_path_factory, "local-env"), "HF_HUB_OFFLINE": "1"}
    with serve_app(["--index", str(index), "--samples", str(SAMPLES), "--model", "default"], env=env) as server:
        server.index = index
        yield server


@pytest.fixture(scope="module")
def ready(local):
    wait_for_line(local, FIRST_START_DONE)
    return local


def test_the_page_is_served_at_once_and_questions_wait_for_the_index(local):
    assert "serving on" in local.output and FIRST_START_DONE not in local.output  # served while indexing
    with pytest.raises(Exception, match="Still indexing the sample papers"):
        Client(local.url, verbose=False).predict(QUESTION, api_name="/ask")


def test_first_start_progress_shows_in_the_page_then_the_library_lists_every_paper(local):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(local.url, timeout=120_000)  # a loaded machine serves the first page slowly
        page.wait_for_selector("#notice progress", timeout=120_000)
        assert "Indexing the sample papers" in page.locator("#notice").inner_text()
        page.wait_for_function(f"document.querySelector('#notice').innerText.includes('{FIRST_START_DONE}')",
                               timeout=900_000)
        page.wait_for_selector("#notice progress", state="detached", timeout=30_000)  # the bar goes with the text
        notice = page.locator("#notice").inner_text()
        assert "First start: indexed 180 sample papers" in notice
        assert notice.count("Answering extractively") == 1  # the offline model, said once
        page.get_by_role("tab", name="Library").click()
        page.wait_for_function("(document.querySelector('#library-totals') || {innerText: ''})"
                               ".innerText.includes('180 papers')", timeout=60_000)
        assert "named from their abstracts" in page.locator("#library-totals").inner_text()
    lines = [line for line in local.output.splitlines() if line.startswith("  indexing: ")]
    assert lines and all(re.match(r"  indexing: \d+/184 records \(\d+%\)", line) for line in lines), lines
    assert any("records/s" in line and "left" in line for line in lines)  # rate and time left
    assert local.output.index("serving on") < local.output.index(FIRST_START_DONE)


def test_a_model_that_cannot_be_had_is_said_once_and_not_offered(ready):
    assert "is not downloaded yet and cannot be downloaded: offline mode is on (HF_HUB_OFFLINE)." in ready.output
    with chromium() as browser:
        page = browser.new_page()
        page.goto(ready.url, timeout=120_000)  # a loaded machine serves the first page slowly
        page.wait_for_selector("#sources .pc-loaded", timeout=120_000)
        page.locator("#settings").get_by_text("Settings").first.click()
        page.wait_for_selector("#k", timeout=30_000)
        assert page.locator("#model").count() == 0  # only extractive answers: no choice to offer


def test_ask_api_returns_the_cli_json_with_citations(ready):
    client = Client(ready.url, verbose=False)
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/ask"]
    result = client.predict(QUESTION, api_name="/ask")
    assert result["mode"] == "extractive" and not result["abstained"]
    assert result["citations"] and {c["paper_id"] for c in result["citations"]} <= {s["paper_id"] for s in result["sources"]}
    assert any("Few-Shot Bot" in c["title"] for c in result["citations"])
    assert all(c["supporting_sentence"] for c in result["citations"])
    cli = subprocess.run([sys.executable, "-m", "chat", "ask", "--json", "--index", str(ready.index), "--model", "none",
                          QUESTION], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TIKTOKEN_CACHE_DIR": str(SHARED / "tiktoken"), "HF_HUB_OFFLINE": "1"})
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout.splitlines()[0])
    assert set(result) == set(expected) and set(expected["timings"]) == set(result["timings"])
    assert {k: v for k, v in result.items() if k != "timings"} == {k: v for k, v in expected.items() if k != "timings"}


def test_ask_api_applies_filters_and_reports_bad_input(ready):
    client = Client(ready.url, verbose=False)
    dated = client.predict(QUESTION, 3, 2030, None, "", api_name="/ask")
    assert dated["abstained"] and not dated["sources"]  # no sample paper is from 2030
    assert len(client.predict(QUESTION, 2, api_name="/ask")["sources"]) <= 2
    with pytest.raises(Exception, match="year_min 2024 is after year_max 2020"):
        client.predict(QUESTION, 5, 2024, 2020, "", api_name="/ask")
    with pytest.raises(Exception, match="question is empty"):
        client.predict("  ", api_name="/ask")


def test_answers_do_not_wait_behind_the_model_and_writes_go_one_at_a_time(ready):
    from webapp.services import Services
    from webapp.ui import build_ui

    settings = app.parse_args(["--index", str(ready.index), "--model", "none"], env={})
    demo, options = build_ui(Services.start(settings, log=lambda line: None))
    groups = {fn.api_name: (fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values()}
    # Several answers at once: an extractive answer never queues behind a generating model (a model
    # generates one answer at a time behind its own lock, models.llm.LocalLLM).
    assert groups["ask"] == groups["respond"] == groups["respond_1"] and groups["ask"][0] == "answer"
    assert groups["ask"][1] > 1
    assert groups["search"][0] == groups["search_1"][0] == "retrieval" and groups["search"][1] > 1
    assert groups["add_papers"] == ("ingest", 1)
    assert all(limit == 1 for group, limit in groups.values() if group == "ingest")  # adding and removing
    assert "pc-badge" in options["css"] and "pc-cite" in options["head"]


def test_conversations_survive_a_server_restart(ready, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(ready.index, index)
    port = free_port()
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        with serve_app(["--index", str(index), "--model", "none"], port=port) as server:
            page.goto(server.url, timeout=120_000)  # a loaded machine serves the first page slowly
            page.wait_for_selector("#sources .pc-loaded", timeout=120_000)
            page.fill("#question textarea", QUESTION)
            page.click("#ask")
            page.wait_for_function("document.querySelectorAll('#chatbot .pc-trace').length === 1", timeout=300_000)
            page.wait_for_function("localStorage.getItem('paperchat-conversations') !== null")
            shown = page.locator("#chatbot .pc-answer .pc-text").first.inner_text()
        with serve_app(["--index", str(index), "--model", "none"], port=port) as server:
            page.goto(server.url, timeout=120_000)  # a loaded machine serves the first page slowly
            page.wait_for_selector("#sources .pc-loaded", timeout=120_000)
            assert page.locator("#chatbot .pc-answer .pc-text").first.inner_text() == shown
            assert "Few-Shot Bot" in page.locator("#sources").inner_text()  # its sources, read again


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


def test_the_browser_secret_is_kept_beside_the_index(tmp_path):
    settings = app.parse_args(["--index", str(tmp_path / "index")], env={})
    first = app.browser_secret(settings, {})
    assert first == app.browser_secret(settings, {}) and len(first) >= 24  # the same after a restart
    assert oct(os.stat(tmp_path / "index" / ".browser-secret").st_mode & 0o777) == "0o600"
    assert app.browser_secret(settings, {"PAPERCHAT_SECRET": "s3cret"}) == "s3cret"


def test_on_a_space_everything_goes_to_a_writable_directory():
    settings = app.parse_args([], env={"SPACE_ID": "someone/paperchat"})
    root = settings.space_dir
    assert root in ("/data", "/tmp/paperchat") and settings.index == os.path.join(root, "index")
    assert settings.models == (DEFAULT_MODEL,) and settings.host == "0.0.0.0"
    env: dict[str, str] = {}
    app.prepare_environment(settings, env)
    assert all(env[name].startswith(root) for name in ("HF_HOME", "GRADIO_TEMP_DIR"))
    assert env["TIKTOKEN_CACHE_DIR"] == str(BUNDLED_DIR)  # read-only use: the file ships with the repo


def test_a_space_fetches_its_default_model_on_first_start(tmp_path_factory, small_samples):
    hub = ModelHubStandin({DEFAULT_MODEL: (SHARED / "models" / "stories260K.gguf").read_bytes()})  # tiny, same name
    index = tmp_path_factory.mktemp("space") / "index"
    with serve(hub) as endpoint:
        env = {**_private_env(tmp_path_factory, "space-env"), "SPACE_ID": "someone/paperchat", "HF_HUB_OFFLINE": "0",
               "HF_ENDPOINT": endpoint, "PAPERCHAT_INDEX": str(index)}
        with serve_app(["--samples", str(small_samples)], env=env) as space:
            wait_for_line(space, "model Qwen2.5 1.5B Instruct (Q4_K_M) ready")  # downloaded in the background
            assert f"loading model {DEFAULT_MODEL}" in space.output and "model download:" in space.output
            assert any(r.startswith("GET /Qwen/") for r in hub.requests)
            result = Client(space.url, verbose=False).predict(QUESTION, api_name="/ask")
    # The model answered (the tiny model writes stories, so the checker may show the quoted answer instead).
    assert result["model"] == "qwen2.5-1.5b-instruct-q4_k_m.gguf"
    assert os.listdir(env["HF_HOME"])  # the model went to the cache the Space may write to
