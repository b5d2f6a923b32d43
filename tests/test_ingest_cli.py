"""``python -m ingest``: summaries, --stats, exit codes, messages instead of tracebacks, a
progress bar on a terminal, a Chroma server, and a SIGKILL in the middle of an ingest."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from pathlib import Path

import pytest

from chat.retrieve import RetrievalConfig, Retriever
from ingest.__main__ import build_parser, main
from ingest.chunk import ChunkerConfig
from ingest.pipeline import IngestOptions, ingest
from ingest.store import Store, StoreConfig
from models.embedder import packaged_path
from tests.conftest import ROOT, SEEDS, SHARED
from tests.test_pipeline import BAD_INPUTS, snapshot, write_bad_inputs, write_jsonl

SUMMARY = re.compile(r"^added (\d+), updated (\d+), unchanged (\d+), merged (\d+) duplicates, rejected (\d+)"
                     r" — index: (\d+) papers, (\d+) chunks$")
SCIFACT = SHARED / "data" / "scifact" / "corpus.jsonl"
# 300 real SciFact records in 10 batches: every full pass embeds ~800 chunks, and the test makes
# about three (clean run, killed runs, completing run); 1500 records would cost over 10 minutes on 2 cores.
KILL_RECORDS, KILL_BATCH = 300, 30


def summary(stdout: str) -> tuple[int, ...]:
    match = SUMMARY.match(stdout.strip().splitlines()[-1])
    assert match, stdout
    return tuple(int(g) for g in match.groups())


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_rerun_on_the_seeds_reports_no_changes(seed_ingest, capsys):
    first = seed_ingest.report
    assert main([str(SEEDS), "--index", seed_ingest.config.path]) == 0
    out = capsys.readouterr().out
    assert summary(out) == (0, 0, first.added, first.merged, 0, first.papers_in_index, first.chunks_in_index)
    assert main([str(SEEDS), "--index", seed_ingest.config.path, "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def test_stats_as_text_and_json(seed_ingest, capsys):
    report = seed_ingest.report
    assert main(["--stats", "--index", seed_ingest.config.path]) == 0
    text = capsys.readouterr().out
    assert f"papers:  {report.papers_in_index}\n" in text and f"chunks:  {report.chunks_in_index}\n" in text
    assert "model:   sentence-transformers/all-MiniLM-L6-v2 (384 dimensions)" in text
    chunker = ChunkerConfig().fingerprint(256)
    assert f"chunker: {chunker}\n" in text
    assert main(["--stats", "--json", "--index", seed_ingest.config.path]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats == {"index": os.path.abspath(seed_ingest.config.path), "papers": report.papers_in_index,
                     "chunks": report.chunks_in_index, "model": "sentence-transformers/all-MiniLM-L6-v2",
                     "dim": 384, "chunker": chunker, "sources": sorted(p.name for p in SEEDS.iterdir())}


def test_bad_input_is_printed_as_file_line_reason_and_exits_non_zero(tmp_path, capsys):
    folder = write_bad_inputs(tmp_path / "inputs")
    assert main([str(folder), "--index", str(tmp_path / "index")]) == 1
    out, err = capsys.readouterr()
    for name, (_, line, reason, _good) in BAD_INPUTS.items():
        where = f"{folder / name}:{line}" if line else f"{folder / name}"
        assert re.search(rf"^{re.escape(where)}: .*{reason}", err, re.M), (name, err)
    good = sum(len(g) for *_, g in BAD_INPUTS.values())
    assert summary(out)[:5] == (good, 0, 0, 0, len(BAD_INPUTS))
    assert "Traceback" not in err


def test_another_model_is_refused_with_a_clear_message(seed_ingest, tmp_path, capsys):
    other = tmp_path / "my-minilm-copy"
    other.symlink_to(packaged_path("all-MiniLM-L6-v2"), target_is_directory=True)
    assert main([str(SEEDS), "--index", seed_ingest.config.path, "--model", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: The index at") and "sentence-transformers/all-MiniLM-L6-v2" in err
    assert str(other) in err and "\n" not in err
    assert Store.open_existing(seed_ingest.config).stats().papers == seed_ingest.report.papers_in_index


@pytest.mark.parametrize("args, message", [
    (["missing.jsonl"], "no such file or directory: missing.jsonl"),
    ([str(SEEDS), "--since", "last week"], "since must be an ISO date"),
    (["--stats", "--index", "/nonexistent/paperchat-index"], "There is no index at /nonexistent/paperchat-index"),
    ([str(SEEDS), "--batch-size", "0"], "batch_size must be at least 1"),
])
def test_user_errors_are_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main([*args, "--index", str(tmp_path / "index")] if "--index" not in args else args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("args", [[], ["--json"], ["--stats", "x.jsonl"], ["x.jsonl", "--format", "docx"]])
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2 and "usage: python -m ingest" in capsys.readouterr().err


def test_help_documents_every_option():
    text = build_parser().format_help()
    for action in build_parser()._actions:
        if action.help == argparse.SUPPRESS:  # hidden on purpose (a test hook such as --arxiv-url)
            continue
        assert all(option in text for option in action.option_strings)
        assert action.help
    for word in ("PAPERCHAT_INDEX", "CHROMA_HOST", "CHROMA_PORT", "arxiv:", "hf:", "Exit status"):
        assert word in text


def test_no_traceback_reaches_the_user_of_the_real_command(tmp_path):
    closed = free_port()
    for args in (["missing.jsonl"], ["--stats", "--index", str(tmp_path / "none")],
                 ["--stats", "--chroma-host", "127.0.0.1", "--chroma-port", str(closed)]):
        done = run_cli(*args, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr


def test_a_fresh_offline_machine_needs_no_tokenizer_download(tmp_path):
    # No TIKTOKEN_CACHE_DIR and no network (this machine is offline): the encoding shipped in data/tiktoken is used.
    source = write_jsonl(tmp_path / "one.jsonl", [{"id": "2301.00001", "abstract": "One abstract."}])
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")}
    done = subprocess.run([sys.executable, "-m", "ingest", source, "--index", str(tmp_path / "index")], cwd=ROOT,
                          env={**env, "TMPDIR": str(tmp_path)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and summary(done.stdout)[:5] == (1, 0, 0, 0, 0), done.stderr

def test_a_terminal_gets_a_progress_bar(tmp_path):
    source = write_jsonl(tmp_path / "two.jsonl", [{"id": "2301.00001", "abstract": "One."},
                                                   {"id": "2301.00002", "abstract": "Two."}])
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a real terminal has a size
    proc = subprocess.Popen([sys.executable, "-m", "ingest", source, "--index", str(tmp_path / "index")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=terminal, text=True)
    os.close(terminal)
    shown = read_all(controller)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0 and summary(out)[:5] == (2, 0, 0, 0, 0)
    assert "ingest: " in shown and "2 papers" in shown and "chunks_embedded=2" in shown and "\r" in shown


def read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    port = free_port()
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    proc = subprocess.Popen([chroma, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"chroma run did not start (exit {proc.poll()})")
            time.sleep(0.5)
    yield "127.0.0.1", port
    proc.terminate()
    proc.wait(timeout=30)


def test_ingest_and_stats_through_a_chroma_server(chroma_server, seed_ingest, capsys):
    host, port = chroma_server
    server = ["--chroma-host", host, "--chroma-port", str(port)]
    assert main([str(SEEDS), *server, "--index", "/nonexistent/ignored"]) == 0
    first = seed_ingest.report
    assert summary(capsys.readouterr().out) == (first.added, 0, 0, first.merged, 0, first.papers_in_index,
                                                first.chunks_in_index)
    assert main(["--stats", "--json", *server]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["index"], stats["papers"], stats["chunks"]) == (f"chroma://{host}:{port}", first.papers_in_index,
                                                                  first.chunks_in_index)
    remote = Store.open_existing(StoreConfig(host=host, port=port))
    assert snapshot(remote) == snapshot(Store.open_existing(seed_ingest.config))


def test_a_search_on_the_server_follows_another_client(chroma_server, embedder, tmp_path, capsys):
    """One client searches while another ingests: the search sees the new paper, dense-scored by id."""
    host, port = chroma_server
    server = ["--chroma-host", host, "--chroma-port", str(port)]
    assert main([str(SEEDS / "003_eabbeabbe19b3830.txt"), *server]) == 0
    retriever = Retriever(Store.open_existing(StoreConfig(host=host, port=port)), embedder,
                          RetrievalConfig(recheck_s=0.0))
    assert retriever.keyword.directory is None  # nothing written beside a server's index
    query = "selective state space models that scale linearly in sequence length"
    assert all(h.paper.paper_id != "2312.00752" for h in retriever.search(query, k=3))
    extra = write_jsonl(tmp_path / "extra.jsonl", [{"id": "2312.00752v2", "title": "Mamba", "abstract":
                        "Selective state space models scale linearly in sequence length and match Transformers."}])
    assert main([str(extra), *server]) == 0
    capsys.readouterr()
    hit = retriever.search(query, k=1, mode="bm25")[0]
    assert hit.paper.paper_id == "2312.00752" and hit.dense > 0.5 and hit.passages[0].startswith("Mamba\n")


def start_and_kill(corpus: str, index: str, delay_s: float) -> None:
    """Start an ingest, wait until it reports a written batch (plus ``delay_s``), then SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-m", "ingest", corpus, "--index", index, "--batch-size", str(KILL_BATCH)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("ingest: "):
                time.sleep(delay_s)
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.stderr.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "".join(lines)


def test_sigkill_mid_ingest_then_rerun_equals_one_clean_run(tmp_path, embedder):
    corpus = tmp_path / "scifact_part.jsonl"
    with open(SCIFACT, encoding="utf-8") as full:
        corpus.write_text("".join(line for _, line in zip(range(KILL_RECORDS), full)))
    clean = Store.open(StoreConfig(path=str(tmp_path / "clean")), embedder.name, embedder.dim)
    reference = ingest([str(corpus)], clean, embedder, IngestOptions(batch_size=KILL_BATCH))
    assert reference.papers_in_index == KILL_RECORDS and not reference.rejected
    killed = str(tmp_path / "killed")
    start_and_kill(str(corpus), killed, delay_s=0.0)
    partial = Store.open_existing(StoreConfig(path=killed)).stats().papers
    assert 0 < partial < KILL_RECORDS
    start_and_kill(str(corpus), killed, delay_s=1.5)  # the re-run killed too, somewhere else
    partial = Store.open_existing(StoreConfig(path=killed)).stats().papers
    done = run_cli(str(corpus), "--index", killed, "--batch-size", str(KILL_BATCH))
    assert done.returncode == 0, done.stderr
    added, updated, unchanged, merged, rejected, papers, chunks = summary(done.stdout)
    assert (added, updated, unchanged, rejected) == (KILL_RECORDS - partial, 0, partial, 0)
    assert snapshot(Store.open_existing(StoreConfig(path=killed))) == snapshot(clean)
    assert (papers, chunks) == (clean.stats().papers, clean.stats().chunks)


def test_rechunk_recuts_an_index_chunked_with_other_settings(tmp_path, embedder, capsys):
    """An index cut with whole-window chunks is flagged on the next ingest; --rechunk makes it
    exactly what a fresh ingest with today's chunker makes."""
    source, old = str(SEEDS / "003_eabbeabbe19b3830.txt"), str(tmp_path / "old")
    store = Store.open(StoreConfig(path=old), embedder.name, embedder.dim)
    wide = IngestOptions(chunker=ChunkerConfig(window_share=1.0))
    assert ingest([source], store, embedder, wide).stale_chunker is None
    assert store.meta.chunker == wide.chunker.fingerprint(embedder.max_tokens)
    assert main([source, "--index", old]) == 0
    out = capsys.readouterr()
    assert "unchanged 36" in out.out and "chunks cut with v2 cl100k_base window=256x1 " in out.err
    assert "run python -m ingest --rechunk (same --index)" in out.err
    assert main(["--rechunk", "--index", old]) == 0
    line = capsys.readouterr().out
    assert re.fullmatch(r"re-chunked 36 papers \(v2 cl100k_base window=256x0\.5 .*\) — index: 36 papers, \d+ chunks\n",
                        line), line
    fresh = Store.open(StoreConfig(path=str(tmp_path / "fresh")), embedder.name, embedder.dim)
    ingest([source], fresh, embedder)
    assert snapshot(Store.open_existing(StoreConfig(path=old))) == snapshot(fresh)
    assert main([source, "--index", old]) == 0 and "rechunk" not in capsys.readouterr().err
    store.set_chunker("")  # as an index made before the chunker was recorded
    assert "settings from before they were recorded" in ingest([source], store, embedder).stale_note
