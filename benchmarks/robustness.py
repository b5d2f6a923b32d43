"""``python -m benchmarks.robustness [--before REF] [--papers N] [--json]``: issue 12's table.

1. **Bad files.** Every hostile file of ``tests/test_sources_hostile.py`` (deep nesting, CSV
   field counts and oversized quoted fields, wrong Parquet types, a NUL byte, UTF-16, control
   codes, ...) ingested on its own with ``python -m ingest``, then all of them together in one
   directory with good files beside them: records kept, lost and stored wrong, exit codes.
2. **Many processes, one index** (SciFact training abstracts, ``N`` per writer):
   two ingests into one empty directory at once; an app-like long-lived reader asking about
   papers another process is adding; two ingests through one ``chroma run`` server; a second
   writer with ``--no-wait``; a writer killed with SIGKILL and the next one taking over; a first
   ingest killed after one batch and the chunker record. After each: papers, chunks and
   vectors counted afresh, and ``python -m chat ask`` about each writer's papers.

``--before REF`` runs the same in a git worktree of ``REF`` (e.g. the commit before the fix)
and prints both columns. Ports 7950-7999 are used for the Chroma server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import robustness_runs as runs

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
PORT = 7951
# Stored wrong: a Python repr (b'...', ['a'], {'k': ...}), a terminal control, a chat-template token.
WRONG = re.compile(r"(?:^|[\s\"])b'|\['|\{'|[\x1b\x07\x9b]|<\||\[/?INST\]")


def file_cases(checkout: Path, work: Path) -> list[dict]:
    """Each hostile file alone, then all together beside good files: kept / lost / wrong / exit."""
    from tests.test_sources_hostile import CASES, CONTROL, HOSTILE_TITLES

    titles = "".join(json.dumps({"id": f"2305.{i:05d}", "title": t, "abstract": f"{t} Abstract {i}. {CONTROL}"}) + "\n"
                     for i, (t, _) in enumerate(HOSTILE_TITLES))
    CASES = {**CASES, "control-codes-in-titles": ("t.jsonl", titles.encode(), [f"2305.{i:05d}" for i in
                                                                              range(len(HOSTILE_TITLES))], [])}
    rows = []
    everything = work / "all"
    everything.mkdir()
    for n, (case, (name, content, kept, _rejected)) in enumerate(CASES.items()):
        folder = work / f"case{n}"
        folder.mkdir()
        (folder / name).write_bytes(content)
        (everything / f"{n:02d}-{name}").write_bytes(content)
        rows.append({"case": case, **_ingest_and_count(checkout, folder, work / f"idx{n}", kept)})
    (everything / "zz-good.jsonl").write_text("".join(json.dumps({"id": f"good{i}", "abstract": f"Good paper {i}."})
                                                      + "\n" for i in range(5)))
    expected = list(dict.fromkeys([k for _, _, kept, _ in CASES.values() for k in kept] + [f"good{i}" for i in range(5)]))
    rows.append({"case": "ALL FILES IN ONE RUN", **_ingest_and_count(checkout, everything, work / "idx-all", expected)})
    return rows


def _ingest_and_count(checkout: Path, folder: Path, index: Path, expected: list[str]) -> dict:
    done = runs.run(checkout, runs.ingest_cmd(checkout, str(folder), "--index", str(index)))
    papers = _papers(index)
    kept = [k for k in expected if k in papers]
    wrong = [pid for pid, text in papers.items() if pid not in expected or WRONG.search(text)]
    return {"good": len(expected), "kept": len(kept), "lost": len(expected) - len(kept), "wrong": len(wrong),
            "exit": done.code, "last_error": _last(done.stderr)}


def _papers(index: Path) -> dict[str, str]:
    from ingest.store import Store, StoreConfig

    if not (index / "chroma.sqlite3").exists():
        return {}
    try:
        store = Store.open_existing(StoreConfig(path=str(index)))
    except Exception:  # noqa: BLE001 - an index the run never finished: nothing kept
        return {}
    return {p.paper_id: " | ".join([p.paper_id, p.title, p.abstract, *p.authors, p.date, *p.categories])
            for p in store.iter_papers()}


def _last(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error")]
    return lines[-1][:140] if lines else ""


def corpora(work: Path, papers: int) -> tuple[Path, Path, list]:
    """Two SciFact slices (one per writer) and questions: each paper's title, asked for that paper."""
    rows = [json.loads(line) for _, line in zip(range(2 * papers), open(SCIFACT, encoding="utf-8"))]
    a, b = work / "writer_a.jsonl", work / "writer_b.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in rows[:papers]))
    b.write_text("".join(json.dumps(r) + "\n" for r in rows[papers:]))
    questions = [["old" if i < papers else "new", r["title"], str(r["_id"])] for i, r in enumerate(rows) if r["title"]]
    return a, b, questions


def scenarios(checkout: Path, work: Path, papers: int, batch: int, only_writers: bool = False) -> list[dict]:
    a, b, questions = corpora(work, papers)
    size = ["--batch-size", str(batch)]  # several batches each: the two writers' saves interleave
    first_a, first_b = next(q for q in questions if q[0] == "old"), next(q for q in questions if q[0] == "new")
    results = []

    # 1. Two ingests into one empty directory at once.
    index = str(work / "two")
    started = time.monotonic()
    procs = [runs.start(checkout, runs.ingest_cmd(checkout, str(c), "--index", index, *size)) for c in (a, b)]
    done = [runs.finish(p, started) for p in procs]
    asks = [runs.ask(checkout, ["--index", index], q[1], q[2]) for q in (first_a, first_b)]
    counted = runs.count_index(index)
    results.append({"scenario": "two ingests, one directory, at once", "exit": [d.code for d in done], **counted,
                    "ask_exit": [x[0] for x in asks], "ask_found": [x[1] for x in asks], "note": _waited(done)})
    if counted["chunk_vectors"] < counted["chunks"] or counted["paper_vectors"] < counted["papers"]:
        fixed = runs.run(ROOT, [sys.executable, "-m", "ingest", "--check", "--repair", "--index", index])
        lines = fixed.stdout.strip().splitlines()
        results.append({"scenario": "the same index after python -m ingest --check --repair (this checkout)",
                        "exit": [fixed.code], **runs.count_index(index), "note": f"{lines[0]}; {lines[-1]}"[:160]})

    if only_writers:
        return results + _server_writers(checkout, work, a, b, size, first_a, first_b)
    # 2. An app-like reader while another process ingests.
    index = str(work / "live")
    runs.run(checkout, runs.ingest_cmd(checkout, str(a), "--index", index))
    proc, flag = runs.reader(checkout, index, questions, work)
    writer = runs.run(checkout, runs.ingest_cmd(checkout, str(b), "--index", index))
    flag.write_text("done")
    seen = json.loads(proc.communicate(timeout=1800)[0].strip().splitlines()[-1])
    after, during = seen["after"], seen["during"]
    results.append({"scenario": "long-lived reader during another process's ingest", "exit": [writer.code],
                    **runs.count_index(index),
                    "reader": f"after: new {after['new_right']}/{after['new']} right, {after['new_errors']} errors; "
                              f"old {after['old_right']}/{after['old']} right, {after['old_errors']} errors; "
                              f"during: {during['new_errors'] + during['old_errors']} errors in "
                              f"{during['new'] + during['old']} searches",
                    "note": after.get("error", during.get("error", ""))})

    results += _server_writers(checkout, work, a, b, size, first_a, first_b)
    return results + lock_scenarios(checkout, work, a, b)


def _server_writers(checkout: Path, work: Path, a: Path, b: Path, size: list[str], first_a, first_b) -> list[dict]:
    """3. Two ingests through one Chroma server at once."""
    results = []
    server_dir = work / "server"
    server = runs.chroma_server(str(server_dir), PORT)
    try:
        remote = ["--chroma-host", "127.0.0.1", "--chroma-port", str(PORT)]
        started = time.monotonic()
        procs = [runs.start(checkout, runs.ingest_cmd(checkout, str(c), *remote, *size)) for c in (a, b)]
        done = [runs.finish(p, started) for p in procs]
        asks = [runs.ask(checkout, remote, q[1], q[2]) for q in (first_a, first_b)]
        results.append({"scenario": "two ingests through one chroma server", "exit": [d.code for d in done],
                        **runs.count_index(host="127.0.0.1", port=PORT), "ask_exit": [x[0] for x in asks],
                        "ask_found": [x[1] for x in asks], "note": _waited(done)})
    finally:
        server.terminate()
        server.wait(timeout=60)
    return results


def lock_scenarios(checkout: Path, work: Path, a: Path, b: Path) -> list[dict]:
    results = []
    # 4. --no-wait while another writer holds the index.
    if runs.supports(checkout, "--no-wait"):
        index = str(work / "nowait")
        holder = runs.start(checkout, runs.ingest_cmd(checkout, str(a), "--index", index))
        time.sleep(_until_lock(Path(index)))
        second = runs.run(checkout, runs.ingest_cmd(checkout, str(b), "--index", index, "--no-wait"))
        first = runs.finish(holder, time.monotonic())
        results.append({"scenario": "second writer with --no-wait", "exit": [first.code, second.code],
                        **runs.count_index(index), "note": _last(second.stderr)})
    # 5. The lock holder killed: the next writer takes over at once.
    index = str(work / "killed")
    killed = runs.kill_after_first_batch(checkout, str(a), index, 32)
    again = runs.run(checkout, runs.ingest_cmd(checkout, str(a), "--index", index))
    results.append({"scenario": "writer SIGKILLed, the same ingest run again", "exit": [killed, again.code],
                    **runs.count_index(index), "note": f"rerun took {again.seconds:.0f} s; "
                    + (again.stdout.strip().splitlines() or [""])[-1][:90]})
    # 6. A first ingest killed after one batch: is the chunker recorded, is --rechunk advised?
    index = str(work / "first")
    killed = runs.kill_after_first_batch(checkout, str(a), index, 32)
    counted = runs.count_index(index)
    extra = runs.run(checkout, runs.ingest_cmd(checkout, str(b), "--index", index))
    advised = "--rechunk" in extra.stderr
    results.append({"scenario": "first ingest killed after a batch, then another ingest", "exit": [killed, extra.code],
                    **counted, "note": f"chunker after the kill: {counted['chunker'] or 'NOT RECORDED'}; "
                                       f"next ingest advises --rechunk: {advised}"})
    return results


def _until_lock(index: Path) -> float:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (index / "chroma.sqlite3").exists():
        time.sleep(0.2)
    return 3.0


def _waited(done: list) -> str:
    waits = [line for d in done for line in d.stderr.splitlines() if line.startswith("waiting")]
    return ("one waited: " + waits[0][:110]) if waits else ""


def worktree(ref: str, work: Path) -> Path:
    path = work / "checkout-before"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=ROOT, check=True, capture_output=True)
    return path


def table(label: str, rows: list[dict], keys: list[str]) -> str:
    lines = [f"| {label} | " + " | ".join(keys) + " |", "|" + " --- |" * (len(keys) + 1)]
    for row in rows:
        first = row.get("case") or row.get("scenario")
        lines.append(f"| {first} | " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


FILE_KEYS = ["good", "kept", "lost", "wrong", "exit", "last_error"]
SCENARIO_KEYS = ["exit", "papers", "chunks", "chunk_vectors", "paper_vectors", "incomplete", "sources", "ask_exit",
                 "ask_found", "reader", "note"]


def _partial(report: dict, args: argparse.Namespace, shown: set) -> None:
    """Each finished part on stderr as it ends: a run of an hour keeps what it measured if a later part fails."""
    if args.json:
        print(json.dumps(report, ensure_ascii=False), file=sys.stderr, flush=True)
        return
    for key in [k for k in report if k.endswith(("_files", "_scenarios")) and k not in shown]:
        shown.add(key)
        files = key.endswith("_files")
        print(f"\n## {key}\n\n" + table("case" if files else "scenario", report[key],
                                          FILE_KEYS if files else SCENARIO_KEYS), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.robustness", description=__doc__.split("\n")[0])
    parser.add_argument("--before", metavar="REF", help="also run a git worktree of REF (the code before the fix)")
    parser.add_argument("--papers", type=int, default=200, help="SciFact abstracts per writer (default 200)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--batch-size", type=int, default=32, help="the concurrent writers' batch size (default 32)")
    parser.add_argument("--skip-files", action="store_true", help="only the many-process scenarios")
    parser.add_argument("--only-writers", action="store_true", help="of the scenarios, only the concurrent writers")
    parser.add_argument("--port", type=int, default=PORT, help=f"the Chroma server's port (default {PORT}; 7950-7999)")
    args = parser.parse_args(argv)
    globals()["PORT"] = args.port
    work = Path(tempfile.mkdtemp(prefix="paperchat-robustness-"))
    checkouts = {"after": ROOT}
    if args.before:
        checkouts = {"before": worktree(args.before, work), **checkouts}
    report, shown = {"load": open("/proc/loadavg").read().split()[:3]}, set()
    try:
        for label, checkout in checkouts.items():
            (work / label).mkdir()
            if not args.skip_files:
                (work / label / "files").mkdir()
                report[f"{label}_files"] = file_cases(checkout, work / label / "files")
                _partial(report, args, shown)
            report[f"{label}_scenarios"] = scenarios(checkout, work / label, args.papers, args.batch_size,
                                                     args.only_writers)
            _partial(report, args, shown)
    finally:
        if args.before:
            subprocess.run(["git", "worktree", "remove", "--force", str(work / "checkout-before")], cwd=ROOT,
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    report["load_end"] = open("/proc/loadavg").read().split()[:3]
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
        return 0
    for label in checkouts:
        if f"{label}_files" in report:
            print(f"\n## {label}: bad files\n")
            print(table("case", report[f"{label}_files"], FILE_KEYS))
        print(f"\n## {label}: many processes, one index ({args.papers} SciFact abstracts per writer)\n")
        print(table("scenario", report[f"{label}_scenarios"], SCENARIO_KEYS))
    print(f"\nload average at start {' '.join(report['load'])}, at end {' '.join(report['load_end'])}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
    sys.exit(main())
