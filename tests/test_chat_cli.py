"""``python -m chat ask``: JSON lines of the exact shape, readable text, model fallback, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY_GGUF

KEYS = ["question", "answer", "mode", "abstained", "citations", "sources", "timings", "model", "checks", "notes",
        "standalone_query"]


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
    assert "Quoted from the abstracts:" in out.stdout
    assert "\nSources:\n[1] " in out.stdout and "(extractive" in out.stdout


def test_ids_filter_restricts_the_sources(seed_index):
    # The attention-free pretraining paper (2212.10544), asked about QLoRA: only the allowed paper may come back.
    out = _ask("How can a 65B parameter model be finetuned on a single 48GB GPU?", "--index", seed_index.path,
               "--json", "--no-abstain", "--ids", "arXiv:2212.10544v2")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert [s["paper_id"] for s in row["sources"]] == ["2212.10544"]
    assert {c["paper_id"] for c in row["citations"]} <= {"2212.10544"}

def test_a_conversation_answers_follow_ups_from_the_previous_subject(seed_index):
    out = _ask("--conversation", "How can a 65B parameter model be finetuned on a single 48GB GPU?",
               "and how much memory does it save?", "What is speculative decoding?", "--index", seed_index.path,
               "--json")
    assert out.returncode == 0, out.stderr
    first, second, third = map(json.loads, out.stdout.strip().splitlines())
    assert first["standalone_query"] == first["question"]
    assert second["standalone_query"] == "how much memory does QLoRA save?"
    assert not second["abstained"] and second["citations"][0]["paper_id"] == "doc-6b7688703829de0d"
    assert third["standalone_query"] == third["question"]  # a new topic is not rewritten
    plain = _ask("--conversation", "What is FlashAttention?", "Why is it fast?", "--index", seed_index.path)
    assert "(searched as: Why is FlashAttention fast?)" in plain.stdout
    alone = _ask("What is FlashAttention?", "Why is it fast?", "--index", seed_index.path, "--json")
    assert json.loads(alone.stdout.strip().splitlines()[1])["standalone_query"] == "Why is it fast?"  # no history


@pytest.mark.parametrize("args, says", [
    (["--year-min", "2030", "--year-max", "2030"], "No indexed paper matches: year 2030\u20132030."),
    (["--category", "q-bio.NC"], "No indexed paper matches: category q-bio.NC."),
    (["--year-min", "2022", "--year-max", "2022", "--ids", "2212.10544"],
     "The only indexed paper matching year 2022\u20132022; paper ids 2212.10544 does not cover this question."),
])
def test_a_filter_that_excludes_the_answer_says_so(seed_index, args, says):
    out = _ask("How can a 65B parameter model be finetuned on a single 48GB GPU?", "--index", seed_index.path,
               *args)
    assert out.returncode == 0, out.stderr
    assert says in out.stdout and "(filters: " in out.stdout
    assert "No paper is indexed yet" not in out.stdout


def test_the_tiny_model_runs_and_its_unsupported_story_is_replaced_by_the_quoted_answer(seed_index):
    out = _ask("How does speculative sampling use a draft model to speed up decoding?", "--index", seed_index.path,
               "--json", "--max-tokens", "24", "--n-ctx", "2048", env={"PAPERCHAT_MODEL": str(TINY_GGUF)})
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert list(row) == KEYS and "generate" in row["timings"] and row["model"] == "stories260K.gguf"
    # A story model's text is supported by no source: the user reads the quoted answer, with a note saying why.
    assert row["mode"] == "extractive" and row["citations"] and len(row["notes"]) == 1
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
