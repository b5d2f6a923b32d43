"""The processes :mod:`benchmarks.robustness` starts, in whichever checkout it measures.

Everything here runs PaperChat through its command lines (``python -m ingest``, ``python
-m chat ask``) or through small driver programs given to ``python -c`` with the checkout as
working directory, so that an older checkout (``--before REF``) runs exactly its own code.
The counts after each scenario are read with *this* checkout's store, in a fresh process
view (:func:`count_index`), so both versions are counted the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ENV = {**os.environ, "TIKTOKEN_CACHE_DIR": os.environ.get("TIKTOKEN_CACHE_DIR", "/work/shared/tiktoken"),
       "HF_HUB_OFFLINE": "1", "PAPERCHAT_MODEL": "none"}

# A long-lived reader, as the app is: one Store and Retriever, asked questions while another
# process ingests and after it is done. Prints one JSON line of counts.
READER = r"""
import json, os, sys, time
from chat.retrieve import Retriever
from ingest.store import Store, StoreConfig
from models.embedder import Embedder, EmbedderConfig
index, questions, done_flag = sys.argv[1:4]
store = Store.open_existing(StoreConfig(path=index))
retriever = Retriever(store, Embedder(EmbedderConfig(model=store.meta.model)))
asked = json.load(open(questions))
def ask(kind, question, expected, tally):
    try:
        hits = retriever.search(question, k=5)
        tally[kind + "_right"] += any(h.paper.paper_id == expected for h in hits)
    except Exception as exc:
        tally[kind + "_errors"] += 1
        tally["error"] = f"{type(exc).__name__}: {exc}"[:160]
    tally[kind] += 1
during = {"new": 0, "old": 0, "new_right": 0, "old_right": 0, "new_errors": 0, "old_errors": 0}
print("ready", flush=True)
while not os.path.exists(done_flag):
    for kind, question, expected in asked[::7]:
        ask(kind, question, expected, during)
    time.sleep(0.2)
time.sleep(2.5)  # the app re-reads the store's generation at most every 2 s
after = {"new": 0, "old": 0, "new_right": 0, "old_right": 0, "new_errors": 0, "old_errors": 0}
for kind, question, expected in asked:
    ask(kind, question, expected, after)
print(json.dumps({"during": during, "after": after}), flush=True)
"""


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float


def ingest_cmd(checkout: Path, *args: str) -> list[str]:
    extra = ["--no-enrich"] if "--no-enrich" in _help(checkout) else []
    return [sys.executable, "-m", "ingest", *args, *extra]


def _help(checkout: Path, cache: dict = {}) -> str:  # noqa: B006 - a per-run cache of each checkout's --help
    if checkout not in cache:
        cache[checkout] = subprocess.run([sys.executable, "-m", "ingest", "--help"], cwd=checkout, env=ENV,
                                         capture_output=True, text=True).stdout
    return cache[checkout]


def supports(checkout: Path, flag: str) -> bool:
    return flag in _help(checkout)


def run(checkout: Path, cmd: list[str], timeout: float = 1800) -> Run:
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=checkout, env=ENV, capture_output=True, text=True, timeout=timeout)
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def start(checkout: Path, cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=checkout, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, started: float, timeout: float = 1800) -> Run:
    out, err = proc.communicate(timeout=timeout)
    return Run(proc.returncode, out, err, time.monotonic() - started)


def ask(checkout: Path, index: list[str], question: str, expected: str) -> tuple[int, bool, str]:
    """``python -m chat ask`` (extractive): exit code, whether ``expected`` is among the sources, stderr."""
    done = run(checkout, [sys.executable, "-m", "chat", "ask", question, "--json", "--model", "none", *index])
    try:
        sources = [s["paper_id"] for s in json.loads(done.stdout.strip().splitlines()[-1])["sources"]]
    except (ValueError, IndexError, KeyError):
        sources = []
    return done.code, expected in sources, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""


def reader(checkout: Path, index: str, questions: list, workdir: Path) -> tuple[subprocess.Popen, Path]:
    qfile, flag = workdir / "questions.json", workdir / "done.flag"
    qfile.write_text(json.dumps(questions))
    flag.unlink(missing_ok=True)
    proc = start(checkout, [sys.executable, "-c", READER, index, str(qfile), str(flag)])
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc, flag


def kill_after_first_batch(checkout: Path, corpus: str, index: str, batch: int) -> int:
    """Start an ingest, SIGKILL it once it reports progress (a batch is written); its exit code."""
    proc = subprocess.Popen(ingest_cmd(checkout, corpus, "--index", index, "--batch-size", str(batch)), cwd=checkout,
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("ingest: "):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    return proc.returncode


def chroma_server(path: str, port: int) -> subprocess.Popen:
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    proc = subprocess.Popen([chroma, "run", "--path", path, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"chroma run did not start on port {port}")


def count_index(path: str | None = None, host: str | None = None, port: int = 8000) -> dict:
    """Papers, chunks, vectors (chunk and paper rows that have one) and sources, read afresh."""
    from ingest.check import check
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder, EmbedderConfig

    store = Store.open_existing(StoreConfig(path=path or "index", host=host, port=port))
    found = check(store, Embedder(EmbedderConfig(model=store.meta.model)))
    return {"papers": found.papers, "chunks": found.chunks, "chunk_vectors": found.chunks - len(found.chunk_vectors),
            "paper_vectors": found.papers - len(found.paper_vectors), "incomplete": len(found.incomplete),
            "sources": len(store.meta.sources), "chunker": store.meta.chunker}
