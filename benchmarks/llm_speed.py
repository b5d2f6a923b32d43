"""Time to first token of the answer path, side by side: threads, the kept prefix, and competing load.

    python -m benchmarks.llm_speed --model $(python -m benchmarks.models qwen-0.5b --path) [--questions 8]

For each competing load (0, 1 and 2 busy processes started by this script, one per core they
occupy) every setting answers the same questions in turn, interleaved question by question so
that drift in the machine's load hits every setting alike:

- ``2 threads, no kept prefix``: the KV cache is cleared before each question;
- ``2 threads`` / ``1 thread``: the fixed prefix kept (models/llm.py ``keep_prefix``);
- ``auto``: threads chosen before each generation from the idle cores (models/threads.py).

Reported per setting: median seconds from the question to the first token (everything before
generation included), median seconds of the model alone (prompt processing), prompt tokens,
and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import replace

SETTINGS = (("2 threads, no kept prefix", 2, False), ("2 threads", 2, True), ("1 thread", 1, True), ("auto", None, True))


def _spin() -> None:  # a competing process: one busy core
    while True:
        pass


def measure(answerer, questions: list[str], settings=SETTINGS) -> dict[str, dict[str, float]]:
    """Median first-token seconds (total and model-only) per setting, questions interleaved."""
    llm = answerer.llm
    times: dict[str, list[tuple[float, float, int]]] = {name: [] for name, *_ in settings}
    for question in questions:
        for name, threads, keep in settings:
            llm.config = replace(llm.config, n_threads=threads)
            # Each setting starts from an empty cache (the previous setting just processed this very prompt, which
            # llama.cpp would otherwise reuse whole); a kept prefix is then restored from its saved state, as for
            # any new question, and only the question's own tokens are processed.
            llm._llama.reset()
            if not keep:
                saved, llm._prefix = llm._prefix, None
            answer = answerer.ask(question)
            if not keep:
                llm._prefix = saved
            before = sum(v for k, v in answer.timings.items() if k in ("rewrite", "retrieve", "extract", "check",
                                                                           "prompt"))
            first = answer.timings.get("first_token", 0.0)
            times[name].append((first, max(0.0, first - before), answer.prompt_tokens))
    return {name: {"first_token_s": round(statistics.median(t[0] for t in rows), 3),
                   "model_s": round(statistics.median(t[1] for t in rows), 3),
                   "prompt_tokens": int(statistics.median(t[2] for t in rows))} for name, rows in times.items() if rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.llm_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="GGUF file")
    parser.add_argument("--questions", type=int, default=8, help="seed questions per setting and load")
    parser.add_argument("--loads", default="0,1,2", help="competing busy processes to measure under")
    parser.add_argument("--index", help="index directory (default: the sample papers, cached)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from benchmarks.answers import DEFAULT_CACHE, read_questions, seed_index
    from chat.setup import open_answerer
    from ingest.store import StoreConfig
    from models.embedder import Embedder

    index = args.index or seed_index(Embedder(), str(DEFAULT_CACHE))
    answerer = open_answerer(StoreConfig(path=index), model_spec=args.model, require_model=True, must_exist=True)
    questions = [q for q, gold in read_questions("benchmarks/seed_questions.jsonl") if gold][:args.questions]
    answerer.ask(questions[0])  # warm: first-call costs are not what is measured
    report = {}
    for load in (int(x) for x in args.loads.split(",")):
        spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(load)]
        for p in spinners:
            p.start()
        time.sleep(2 if load else 0)
        try:
            started = os.getloadavg()[0]
            results = measure(answerer, questions)
            report[f"{load} busy"] = {"load_average": round((started + os.getloadavg()[0]) / 2, 2), **results}
        finally:
            for p in spinners:
                p.terminate()
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for load, rows in report.items():
            print(f"{load} (load average {rows.pop('load_average')}):")
            for name, row in rows.items():
                print(f"  {name:<26} first token {row['first_token_s']:6.2f} s   model {row['model_s']:6.2f} s   "
                      f"{row['prompt_tokens']} prompt tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
