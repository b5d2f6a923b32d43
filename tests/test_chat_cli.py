"""``python -m chat ask``: JSON lines of the exact shape, readable text, model fallback, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY_GGUF

KEYS = ["question", "answer", "mode", "abstained", "citations", "sources", "timings"]


def _ask(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "PAPERCHAT_MODEL"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "chat", "ask", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=600)


def test_json_lines_one_per_question_in_the_exact_shape(seed_index):
    out = _ask("How can a 65B parameter model be finetuned on a single 48GB GPU?", "How do I bake sourdough bread?",
               "--index", seed_index.path, "--json")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    for row in (first, second):
        assert list(row) == KEYS and row["mode"] == "extractive"
        assert all(list(s) == ["paper_id", "title", "score"] for s in row["sources"])
        assert "total" in row["timings"]
    assert not first["abstained"] and first["citations"]
    assert list(first["citations"][0]) == ["n", "paper_id", "title", "url", "supporting_sentence"]
    assert first["citations"][0]["paper_id"] == "doc-6b7688703829de0d"
    assert second["abstained"] and second["citations"] == [] and len(second["sources"]) == 5
    assert "Traceback" not in out.stderr


def test_plain_text_lists_the_cited_sources(seed_index):
    out = _ask("Which fine-tuned LLaMA model beats GPT-4 on arithmetic tasks?", "--index", seed_index.path, "--k", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Q: Which fine-tuned LLaMA model")
    assert "Extractive answer (no language model):" in out.stdout
    assert "\nSources:\n[1] " in out.stdout and "(extractive" in out.stdout


def test_ids_filter_restricts_the_sources(seed_index):
    # The attention-free pretraining paper (2212.10544), asked about QLoRA: only the allowed paper may come back.
    out = _ask("How can a 65B parameter model be finetuned on a single 48GB GPU?", "--index", seed_index.path,
               "--json", "--no-abstain", "--ids", "arXiv:2212.10544v2")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert [s["paper_id"] for s in row["sources"]] == ["2212.10544"]
    assert {c["paper_id"] for c in row["citations"]} <= {"2212.10544"}

def test_the_tiny_model_answers_in_llm_mode(seed_index):
    out = _ask("How does speculative sampling use a draft model to speed up decoding?", "--index", seed_index.path,
               "--json", "--max-tokens", "24", "--n-ctx", "2048", env={"PAPERCHAT_MODEL": str(TINY_GGUF)})
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["mode"] == "llm" and list(row) == KEYS and "generate" in row["timings"]
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr  # the model is freed cleanly


def test_a_model_that_cannot_be_had_falls_back_to_extractive_with_a_note(seed_index):
    out = _ask("How can a 65B parameter model be finetuned on a single 48GB GPU?", "--index", seed_index.path,
               "--json", "--model", "nobody/nothing:missing.gguf", env={"HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["mode"] == "extractive"
    assert "note:" in out.stderr and "Answering extractively" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("args, message", [
    (["Q?", "--index", "/nonexistent/index"], "error: No index at /nonexistent/index"),
    (["Q?", "--k", "0"], "--k must be at least 1"),
    (["   ", "--index", "{seed}"], "error: the question is empty"),
])
def test_errors_are_one_readable_line(seed_index, args, message):
    out = _ask(*[a.replace("{seed}", seed_index.path) for a in args])
    assert out.returncode != 0 and message in out.stderr and "Traceback" not in out.stderr
