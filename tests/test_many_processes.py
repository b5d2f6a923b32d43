"""One index, many processes, for real: concurrent ``python -m ingest`` runs, a long-lived reader
in this process seeing another process's papers, the writer lock (waiting, ``--no-wait``, a
dead holder), writers through a ``chroma run`` server, the chunker record after a killed first
ingest, and ``--check --repair`` on an index that lost vectors, chunks and its records."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from chat.retrieve import Filters, RetrievalConfig, Retriever
from ingest.__main__ import main
from ingest.check import check, repair
from ingest.chunk import ChunkerConfig
from ingest.lock import WriterLock
from ingest.pipeline import ingest
from ingest.store import Chunk, Store, StoreConfig
from tests.conftest import ROOT, SHARED
from tests.test_ingest_cli import run_cli, start_and_kill, summary

SCIFACT = SHARED / "data" / "scifact" / "corpus.jsonl"
ENV = {**os.environ, "PAPERCHAT_MODEL": "none"}


def scifact(path, start: int, count: int) -> tuple[str, list[dict]]:
    """``count`` SciFact training abstracts from ``start`` written to ``path``; the path and the rows."""
    with open(SCIFACT, encoding="utf-8") as corpus:
        rows = [json.loads(line) for _, line in zip(range(start + count), corpus)][start:]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path), rows


def ingest_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ingest", *args, "--no-enrich"], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ask_process(*args: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "chat", "ask", *args, "--json", "--model", "none"], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_two_ingests_at_once_keep_every_paper_chunk_and_vector(tmp_path):
    """Two real processes into one empty index: one waits for the other, nothing is lost, and
    ``chat ask`` answers about either one's papers."""
    a, rows_a = scifact(tmp_path / "a.jsonl", 0, 24)
    b, rows_b = scifact(tmp_path / "b.jsonl", 24, 24)
    index = str(tmp_path / "index")
    outs, procs = contend(StoreConfig(path=index), [[a, "--index", index], [b, "--index", index]])
    assert [p.returncode for p in procs] == [0, 0], outs
    store = Store.open_existing(StoreConfig(path=index))
    found = check(store, _embedder(store))
    assert found.ok and found.papers == 48 and not found.chunk_vectors and not found.paper_vectors, found.lines()
    assert set(store.meta.sources) == {"a.jsonl", "b.jsonl"}
    answers = ask_process(rows_a[3]["title"], rows_b[3]["title"], "--index", index)
    assert [rows_a[3]["_id"], rows_b[3]["_id"]] == [a["sources"][0]["paper_id"] for a in answers]


def contend(config: StoreConfig, runs: list[list[str]]) -> tuple[list, list[subprocess.Popen]]:
    """Start one ingest per ``runs`` while this test holds the writer lock; release it once every one
    is waiting, so that they all contend for the index at the same moment. Their (stdout, stderr)."""
    with Store.writer(config, command="the test"):
        procs = [ingest_process(*args, "--batch-size", "6") for args in runs]
        for proc in procs:
            assert proc.stderr.readline().startswith(f"waiting: the index is being written by pid {os.getpid()}")
    return [p.communicate(timeout=900) for p in procs], procs


def _embedder(store: Store):
    from models.embedder import Embedder, EmbedderConfig

    return Embedder(EmbedderConfig(model=store.meta.model))


def test_a_long_lived_reader_sees_another_process_s_papers(tmp_path, embedder):
    """As the app: one Store and Retriever, opened before another process ingests. Without the
    reopen, Chroma's in-memory vectors lacked the new papers ("Error finding id")."""
    a, rows_a = scifact(tmp_path / "a.jsonl", 0, 10)
    b, rows_b = scifact(tmp_path / "b.jsonl", 10, 20)
    config = StoreConfig(path=str(tmp_path / "index"))
    store = Store.open(config, embedder.name, embedder.dim)
    ingest([a], store, embedder)
    retriever = Retriever(store, embedder, RetrievalConfig(recheck_s=0.0))
    old_title = rows_a[2]["title"]
    assert retriever.search(old_title, k=1)[0].paper.paper_id == rows_a[2]["_id"]
    done = run_cli(b, "--index", config.path, "--no-enrich")
    assert done.returncode == 0, done.stderr
    for row in rows_b[:10]:
        hits = retriever.search(row["title"], k=3)
        assert hits[0].paper.paper_id == row["_id"] and hits[0].dense > 0.3, (row["title"], hits[:1])
    narrow = retriever.search(rows_b[0]["title"], k=2, filters=Filters(paper_ids=(rows_b[0]["_id"], rows_b[1]["_id"])))
    assert narrow[0].paper.paper_id == rows_b[0]["_id"] and narrow[0].dense > 0.3  # chunk vectors fetched by id
    assert retriever.search(old_title, k=1)[0].dense > 0.3
    assert store.stats().papers == 30


def test_a_second_writer_waits_or_with_no_wait_exits_2_naming_the_holder(tmp_path):
    source, _ = scifact(tmp_path / "a.jsonl", 0, 3)
    config = StoreConfig(path=str(tmp_path / "index"))
    with Store.writer(config, command="python -m ingest big.jsonl"):
        refused = run_cli(source, "--index", config.path, "--no-wait", "--no-enrich")
        waiting = ingest_process(source, "--index", config.path)
        line = waiting.stderr.readline()
        assert waiting.poll() is None  # still waiting while we hold the lock
    out, err = waiting.communicate(timeout=600)
    assert refused.returncode == 2 and refused.stdout == ""
    assert f"is being written by pid {os.getpid()} (python -m ingest big.jsonl), since " in refused.stderr
    assert line.startswith(f"waiting: the index is being written by pid {os.getpid()} (python -m ingest big.jsonl)")
    assert waiting.returncode == 0 and summary(out)[0] == 3, err


def test_a_lock_left_by_a_killed_writer_is_taken_over(tmp_path):
    folder = str(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import os, sys; from ingest.lock import WriterLock; "
                               "WriterLock(sys.argv[1]).acquire('python -m ingest huge.jsonl'); print(os.getpid(), "
                               "flush=True); input()", folder], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    pid = int(holder.stdout.readline())
    lock = WriterLock(folder)
    assert lock.holder().pid == pid
    with pytest.raises(Exception, match=f"is being written by pid {pid} \\(python -m ingest huge.jsonl\\)"):
        lock.acquire(wait=False)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    lock.acquire(wait=False)  # the kernel released the dead holder's lock: no waiting
    try:
        assert lock.took_over.pid == pid and lock.holder().pid == os.getpid()
    finally:
        lock.release()
    assert lock.holder() is None


def chroma_port() -> int:
    """A free port in 7950-7999 (this suite's range for Chroma servers)."""
    for port in range(7950, 8000):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port in 7950-7999")


def test_two_ingests_through_a_chroma_server(tmp_path):
    """A server owns the vectors, so its clients see each other's writes; the lease row in the
    meta collection still lets one writer in at a time, and nothing is lost."""
    port = chroma_port()
    chroma = shutil.which("chroma") or os.path.join(os.path.dirname(sys.executable), "chroma")
    server = subprocess.Popen([chroma, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_chroma(server, port)
        remote = ["--chroma-host", "127.0.0.1", "--chroma-port", str(port)]
        a, rows_a = scifact(tmp_path / "a.jsonl", 0, 15)
        b, rows_b = scifact(tmp_path / "b.jsonl", 15, 15)
        outs, procs = contend(StoreConfig(host="127.0.0.1", port=port), [[a, *remote], [b, *remote]])
        assert [p.returncode for p in procs] == [0, 0], outs
        store = Store.open_existing(StoreConfig(host="127.0.0.1", port=port))
        found = check(store, _embedder(store))
        assert found.ok and found.papers == 30 and found.chunk_vectors == (), found.lines()
        assert set(store.meta.sources) == {"a.jsonl", "b.jsonl"} and store.writer_holder() is None
        answers = ask_process(rows_a[1]["title"], rows_b[1]["title"], *remote)
        assert [rows_a[1]["_id"], rows_b[1]["_id"]] == [a["sources"][0]["paper_id"] for a in answers]
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for_chroma(server: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"chroma run did not start (exit {server.poll()})")
            time.sleep(0.5)


def test_a_first_ingest_killed_after_a_batch_leaves_the_chunker_record(tmp_path, embedder, capsys):
    corpus, _ = scifact(tmp_path / "a.jsonl", 0, 60)
    index = str(tmp_path / "index")
    start_and_kill(corpus, index, delay_s=0.0)
    store = Store.open_existing(StoreConfig(path=index))
    assert 0 < store.stats().papers < 60
    assert store.meta.chunker == ChunkerConfig().fingerprint(embedder.max_tokens)
    assert main([corpus, "--index", index, "--no-enrich"]) == 0
    assert "rechunk" not in capsys.readouterr().err


def test_check_finds_and_repair_restores_exactly_what_is_missing(tmp_path, embedder, capsys):
    corpus, _ = scifact(tmp_path / "a.jsonl", 0, 12)
    index = str(tmp_path / "index")
    store = Store.open(StoreConfig(path=index), embedder.name, embedder.dim)
    # Save the vectors to disk after every 10 (Chroma's default is 1,000): this small index then has
    # vector files to lose, as a large one does.
    store._chunks.modify(configuration={"hnsw": {"sync_threshold": 10}})  # noqa: SLF001
    ingest([corpus], store, embedder)
    Retriever(store, embedder).search("cells", k=1)  # saves the keyword index beside the store
    assert main(["--check", "--index", index]) == 0 and "index is whole" in capsys.readouterr().out
    ids = sorted(store.paper_ids())
    kept_vector = store.vectors("papers", [ids[1]])[ids[1]]
    # The damage: a paper loses a chunk, a chunk outlives its paper, the keyword index is for another
    # index, the chunker record is gone, and the vector files of the chunks are lost (as a second
    # writer saving its own copy over them did).
    store.delete_chunks([f"{ids[0]}#1"])
    store._chunks.upsert(ids=["gone#0"], documents=["stray"], embeddings=[[0.1] * embedder.dim],
                         metadatas=[{"paper_id": "gone", "position": 0, "n_chunks": 1, "gen": 1}])
    keyword = os.path.join(index, "keyword", "index.json")
    saved = json.load(open(keyword))
    json.dump({**saved, "generation": store.meta.generation + 2}, open(keyword, "w"))
    store.set_chunker("")
    chunks_segment = store._chunks.id  # noqa: SLF001 - the test damages the files Chroma keeps
    store.reopen()
    shutil.rmtree(os.path.join(index, str(_segment_dir(index, chunks_segment))))
    found = check(store, embedder)
    assert not found.ok and found.incomplete == (ids[0],) and found.orphans == ("gone#0",)
    assert len(found.chunk_vectors) > 0.9 * found.chunks  # (what was written after the last save is in Chroma's log)
    assert not found.keyword_ok and not found.chunker_ok
    assert main(["--check", "--index", index]) == 1
    assert "needs repair" in capsys.readouterr().out
    fixed = repair(store, embedder, found)
    assert fixed.after.ok, fixed.after.lines()
    assert (fixed.recut_papers, fixed.dropped_chunks, fixed.reembedded_papers) == (1, 1, 0)
    assert fixed.reembedded_chunks == len([c for c in found.chunk_vectors if c.rsplit("#", 1)[0] not in (ids[0], "gone")])
    assert fixed.keyword_rebuilt and fixed.chunker_recorded
    assert store.vectors("papers", [ids[1]])[ids[1]] == pytest.approx(kept_vector)  # untouched rows keep theirs
    assert main(["--check", "--index", index]) == 0


def _segment_dir(index: str, collection_id) -> str:
    """The folder of a collection's vector segment (named by segment id, which sqlite maps)."""
    import sqlite3

    with sqlite3.connect(os.path.join(index, "chroma.sqlite3")) as db:
        [(segment,)] = db.execute("SELECT id FROM segments WHERE collection = ? AND scope = 'VECTOR'",
                                  (str(collection_id),)).fetchall()
    return segment


def test_terminal_codes_in_an_index_are_printed_escaped(tmp_path, embedder, capsys):
    """An index written before titles were cleaned still prints safely; a rejected file's name too."""
    index = str(tmp_path / "index")
    store = Store.open(StoreConfig(path=index), embedder.name, embedder.dim)
    from ingest.records import Paper

    title = "Owned\x1b]0;pwned\x07\x1b[2J title"
    paper = Paper("2305.14314", title, "QLoRA finetunes 65B models on one 48GB GPU.")
    store.write([paper], [Chunk(paper.paper_id, 0, 1, paper.abstract)], embedder.embed([paper.abstract]))
    done = subprocess.run([sys.executable, "-m", "chat", "ask", "How does QLoRA finetune 65B models?", "--model",
                           "none", "--index", index], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "\x1b" not in done.stdout and "\x07" not in done.stdout
    bad = tmp_path / "bad\x1b]0;x\x07.jsonl"
    bad.write_text('{"id": "1", "abstract": \n')
    assert main([str(bad), "--index", str(tmp_path / "other"), "--no-enrich"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "bad\\x1b]0;x\\x07.jsonl:1: malformed JSON" in err
