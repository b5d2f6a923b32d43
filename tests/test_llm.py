"""The llama.cpp path on the real tiny GGUF, and model download from a stand-in Hugging Face hub on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from models.errors import UnavailableError
from models.llm import LLMConfig, LocalLLM, fallback_prompt, resolve_model
from tests.conftest import ROOT, TINY_GGUF
from tests.fixtures.standins import ModelHubStandin, serve

CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
          "<|im_start|>assistant\n")
MESSAGES = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Once upon a time"}]


@pytest.fixture(scope="module")
def llm():
    return LocalLLM(LLMConfig(model=str(TINY_GGUF), n_ctx=512, temperature=0.0, max_tokens=40))


def test_streams_token_by_token_up_to_max_tokens(llm):
    pieces = list(llm.stream(MESSAGES, max_tokens=24))
    assert len(pieces) >= 5 and all(isinstance(p, str) and p for p in pieces)
    assert llm.count_tokens("".join(pieces)) <= 24 + 2  # re-tokenising joined pieces may merge or split a little
    assert len(pieces) <= 24


def test_stops_before_a_stop_string(llm):
    text = "".join(llm.stream(MESSAGES, max_tokens=60))
    words = [w for w in text.split() if len(w) > 3]
    assert words, text
    stop = words[len(words) // 2]
    stopped = "".join(llm.stream(MESSAGES, max_tokens=60, stop=[stop]))
    assert stop not in stopped and text.startswith(stopped)  # greedy: same text, cut before the stop string


def test_without_a_chat_template_the_plain_template_is_used(llm):
    assert not llm.has_chat_template
    assert llm.render(MESSAGES) == fallback_prompt(MESSAGES)
    assert llm.count_messages(MESSAGES) > llm.count_tokens("You tell stories. Once upon a time")


def test_a_chat_template_goes_through_create_chat_completion():
    llm = LocalLLM(LLMConfig(model=str(TINY_GGUF), n_ctx=512, max_tokens=16, chat_template=CHATML))
    assert llm.has_chat_template
    assert llm.render(MESSAGES).startswith("<|im_start|>system\nYou tell stories.<|im_end|>")
    assert len(list(llm.stream(MESSAGES))) >= 3


def test_a_kept_prefix_survives_another_prompt_and_changes_nothing_in_the_output():
    fresh = LocalLLM(LLMConfig(model=str(TINY_GGUF), n_ctx=512, temperature=0.0, max_tokens=24, n_threads=1))
    kept = LocalLLM(LLMConfig(model=str(TINY_GGUF), n_ctx=512, temperature=0.0, max_tokens=24, n_threads=1))
    prefix = MESSAGES[:1]
    assert 0 < kept.keep_prefix(prefix) < len(kept._tokens(kept.render(MESSAGES)))
    list(kept.stream([{"role": "user", "content": "A different prompt in between."}], max_tokens=4))
    expected = "".join(fresh.stream(MESSAGES))
    assert "".join(kept.stream(MESSAGES)) == expected  # the restored cache gives the same greedy text
    prefix_tokens = kept._prefix[0]
    assert list(kept._llama._input_ids[:len(prefix_tokens)]) == prefix_tokens


def test_threads_are_the_configured_number_or_the_idle_cores(llm):
    one = LocalLLM(LLMConfig(model=str(TINY_GGUF), n_ctx=256, max_tokens=4, n_threads=1))
    list(one.stream(MESSAGES))
    assert one.threads == 1
    list(llm.stream(MESSAGES, max_tokens=4))
    assert 1 <= llm.threads <= (os.cpu_count() or 1)


def test_data_is_counted_without_special_tokens(llm):
    assert llm.count_tokens("<|im_start|>") == llm.count_tokens("<|im_start|>")
    assert llm.count_tokens("Once upon a time there was a cat.") < llm.count_tokens("Once upon a time there was a cat. " * 2)


@pytest.mark.parametrize("spec, error", [
    ("no/such/dir/model.gguf", UnavailableError),
    ("missing-model.gguf", UnavailableError),
    ("not a model", ValueError),
    ("", ValueError),
])
def test_bad_model_names(spec, error):
    with pytest.raises(error):
        resolve_model(spec)


def test_a_local_path_resolves_to_itself():
    assert resolve_model(str(TINY_GGUF)) == str(TINY_GGUF.resolve())


@pytest.fixture
def hub():
    standin = ModelHubStandin({"paperchat/tiny-stories:stories260K.gguf": TINY_GGUF.read_bytes()})
    with serve(standin) as url:
        standin.url = url
        yield standin


_RESOLVE = """
import json, sys
from models.llm import resolve_model
from models.errors import UnavailableError
seen = []
try:
    path = resolve_model(sys.argv[1], progress=lambda done, total: seen.append((done, total)))
    print(json.dumps({"path": path, "progress": seen}))
except UnavailableError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def _resolve_in(env: dict, spec: str) -> dict:
    # A fresh process: huggingface_hub reads HF_ENDPOINT / HF_HUB_OFFLINE when it is imported.
    out = subprocess.run([sys.executable, "-c", _RESOLVE, spec], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env(tmp_path, endpoint: str, offline: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1" if offline else "0",
               HF_HUB_DISABLE_TELEMETRY="1")
    return env


def test_download_from_the_hub_once_with_progress_then_offline_from_the_cache(hub, tmp_path):
    spec = "paperchat/tiny-stories:stories260K.gguf"
    first = _resolve_in(_env(tmp_path, hub.url, offline=False), spec)
    size = TINY_GGUF.stat().st_size
    assert first["progress"] and first["progress"][-1] == [size, size]
    with open(first["path"], "rb") as fh:
        assert fh.read() == TINY_GGUF.read_bytes()
    assert any(r.startswith("HEAD /paperchat/tiny-stories/resolve/main/stories260K.gguf") for r in hub.requests)
    assert any(r.startswith("GET /paperchat/tiny-stories/resolve/main/stories260K.gguf") for r in hub.requests)
    seen = len(hub.requests)
    again = _resolve_in(_env(tmp_path, hub.url, offline=True), spec)
    assert again["path"] == first["path"] and len(hub.requests) == seen  # offline: the cache, no request


@pytest.mark.parametrize("spec, offline, phrase", [
    ("paperchat/tiny-stories:other.gguf", False, "not found"),
    ("paperchat/tiny-stories:stories260K.gguf", True, "offline mode is on (HF_HUB_OFFLINE)"),
])
def test_unavailable_models_are_reported(hub, tmp_path, spec, offline, phrase):
    result = _resolve_in(_env(tmp_path, hub.url, offline=offline), spec)
    assert phrase in result["error"]


def test_an_unreachable_hub_is_unavailable(tmp_path):
    env = _env(tmp_path, "http://127.0.0.1:9", offline=False)  # port 9 (discard): nothing listens
    result = _resolve_in(env, "paperchat/tiny-stories:stories260K.gguf")
    assert "http://127.0.0.1:9 cannot be reached (offline?)" in result["error"]
