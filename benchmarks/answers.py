"""Quality of the full answer path, per mode and model: ``python -m benchmarks.answers``.

Questions come from our own set over the sample papers (``--questions FILE``: JSON lines of
``{"question", "papers", "facts", "kind"}``, see benchmarks/DATA.md; the older
``{"question", "paper_id"}`` rows work too) or from a BEIR-layout dataset (``--beir DIR``: its
corpus is ingested into a cached index; with PubMedQA and a model, the yes/no/maybe decision
the answer opens with is scored against the dataset's). ``--ood FILE`` adds questions the
papers do not cover (one per line), which should be abstained on. Every answer is dumped
(``--dump FILE``, one :class:`benchmarks.answer_metrics.Record` per line) and scored from
its text by benchmarks/answer_metrics.py; ``--score FILE`` scores a dump again, e.g. one
written by an older version of the code.

    python -m benchmarks.answers --questions benchmarks/answer_questions.jsonl --model none
    python -m benchmarks.answers --questions benchmarks/answer_questions.jsonl --model $(python -m benchmarks.models qwen-0.5b --path)
    python -m benchmarks.answers --beir ../shared/data/pubmedqa --model MODEL --limit 100 --decisions
    python -m benchmarks.answers --score run.jsonl --audit 20

>>> decision("Yes, it improves arithmetic [1]."), decision("No. The trial found no effect [2]."), decision("It may help.")
('yes', 'no', '')
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.answer_metrics import Record, Scores, score

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True)
class Question:
    question: str
    papers: tuple[str, ...]  # empty: the papers do not cover it
    facts: tuple[str, ...] = ()
    kind: str = ""
    decision: str = ""  # PubMedQA's yes / no / maybe


def decision(answer: str) -> str:
    """The yes/no/maybe an answer opens with ('' when it opens with neither)."""
    body = "\n".join(line for line in answer.splitlines() if not line.rstrip().endswith(":")).strip().lower()
    match = re.match(r"^(yes|no|maybe|possibly|unclear|it is unclear|partly|partially)\b", body)
    if not match:
        return ""
    return {"possibly": "maybe", "unclear": "maybe", "it is unclear": "maybe", "partly": "maybe",
            "partially": "maybe"}.get(match.group(1), match.group(1))


def answer_one(answerer, question: Question, k: int) -> Record:
    """Answer ``question`` and keep what scoring needs (works with this code and with older Answerers)."""
    answer = answerer.ask(question.question, k=k)
    papers = {h.paper.paper_id: h.paper for h in answer.retrieved}
    shown_ids = getattr(answer, "shown", None) or [h.paper.paper_id for h in answer.retrieved]
    return Record(
        question.question, question.papers, question.facts, question.kind, answer.mode,
        answer.model or "", answer.answer,
        tuple((c.paper_id, papers[c.paper_id].abstract if c.paper_id in papers else "") for c in answer.citations),
        answer.abstained, getattr(answer, "fallback", ""), float(answer.timings.get("first_token", 0.0)),
        float(answer.timings.get("total", 0.0)), os.getloadavg()[0], getattr(answer, "raw", "") or "",
        tuple((pid, papers[pid].abstract) for pid in shown_ids if pid in papers))


def beir_questions(directory: str, split: str, embedder, cache: str) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    """(index directory, [(question, gold paper ids)]) for a BEIR dataset, ingesting it on first use."""
    from benchmarks.beir import load_beir
    from benchmarks.retrieval import cache_dir, cached_index, corpus_to_paper_ids

    dataset = load_beir(directory, split)
    folder = cache_dir(dataset, embedder.name, cache)
    store = cached_index([dataset.corpus_path], embedder, folder)
    ids = corpus_to_paper_ids(dataset, store)
    questions = [(text, tuple(sorted({ids[d] for d, g in dataset.qrels[q].items() if g > 0 and d in ids})))
                 for q, text in dataset.queries.items()]
    return os.path.join(folder, "index"), questions


def seed_index(embedder, cache: str, samples: str = str(ROOT / "data" / "samples")) -> str:
    """The seed corpus ingested into a cached index (rebuilt when the sample files or the chunker change)."""
    from benchmarks.retrieval import cached_index

    digest = hashlib.sha1()
    parsing = [ROOT / "ingest" / name for name in ("formats_pages.py", "repair.py", "records.py")]
    for path in [Path(samples) / name for name in sorted(os.listdir(samples))] + parsing:
        if path.is_file():  # the index is rebuilt when the samples or the code reading them change
            digest.update(path.name.encode() + path.read_bytes())
    folder = os.path.join(cache, f"seeds-{digest.hexdigest()[:12]}-{embedder.name.replace('/', '_')}")
    cached_index([samples], embedder, folder)
    return os.path.join(folder, "index")


def read_questions(path: str) -> list[tuple[str, tuple[str, ...]]]:
    """JSON lines of {"question", "paper_id"} or {"question", "papers"} -> (question, gold paper ids)."""
    return [(q.question, q.papers) for q in read_question_rows(path)]


def read_question_rows(path: str) -> list[Question]:
    """Our question files: {"question", "papers" | "paper_id", "facts", "kind"} per line."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                gold = row.get("papers") or row.get("paper_id") or ()
                rows.append(Question(row["question"], tuple([gold] if isinstance(gold, str) else gold),
                                     tuple(row.get("facts") or ()), row.get("kind", "")))
    return rows


def read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip() and not line.startswith("#")]


def pubmedqa_decisions(directory: str) -> dict[str, str]:
    """Question text -> the dataset's yes/no/maybe decision."""
    with open(os.path.join(directory, "queries.jsonl"), encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return {r["text"]: (r.get("metadata") or {}).get("final_decision", "") for r in rows}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.answers", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--beir", help="BEIR-layout dataset directory")
    source.add_argument("--questions", help="our question file (JSON lines) over --index (default: the samples)")
    source.add_argument("--score", help="score a dump written by --dump instead of answering")
    parser.add_argument("--split", default="train")
    parser.add_argument("--index", help="index directory for --questions (default: the sample papers, cached)")
    parser.add_argument("--ood", help="questions the papers do not cover, one per line")
    parser.add_argument("--limit", type=int, help="answer at most this many questions")
    parser.add_argument("--model", default="none", help="GGUF file or 'none' for extractive answers (default)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: chosen by the model's config)")
    parser.add_argument("--decisions", action="store_true", help="score yes/no/maybe (PubMedQA)")
    parser.add_argument("--index-cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--dump", help="write one JSON line per answer here")
    parser.add_argument("--audit", type=int, default=0, help="print this many random cited sentences to read")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    records = read_dump(args.score) if args.score else answer_all(args)
    if args.dump and not args.score:
        with open(args.dump, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records)
    report = report_for(records, args)
    print(json.dumps(report, ensure_ascii=False) if args.json else table(report))
    if args.audit:
        print_audit(records, args.audit)
    print(f"({len(records)} answers, {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.2f})")
    return 0


def answer_all(args: argparse.Namespace) -> list[Record]:
    from chat.setup import open_answerer
    from ingest.store import StoreConfig
    from models.embedder import Embedder
    from models.llm import LLMConfig

    embedder = Embedder()
    if args.beir:
        index, pairs = beir_questions(args.beir, args.split, embedder, args.index_cache)
        decisions = pubmedqa_decisions(args.beir) if args.decisions else {}
        questions = [Question(q, gold, decision=decisions.get(q, "")) for q, gold in pairs]
    else:
        index = args.index or seed_index(embedder, args.index_cache)
        questions = read_question_rows(args.questions)
    questions = questions[:args.limit] if args.limit else questions
    questions += [Question(q, ()) for q in (read_lines(args.ood) if args.ood else [])]
    llm_config = LLMConfig(n_ctx=args.n_ctx, **({"n_threads": args.threads} if args.threads else {}))
    answerer = open_answerer(StoreConfig(path=index), model_spec=args.model, require_model=args.model != "none",
                             llm_config=llm_config, must_exist=True)
    records = []
    for i, question in enumerate(questions, 1):
        record = answer_one(answerer, question, args.k)
        records.append(_with_decision(record, question.decision))
        print(f"  {i}/{len(questions)} {record.seconds:.1f}s load {record.load:.1f}", file=sys.stderr, flush=True)
    return records


def _with_decision(record: Record, gold: str) -> Record:
    from dataclasses import replace

    return replace(record, kind=f"decision:{gold}") if gold else record


def read_dump(path: str) -> list[Record]:
    with open(path, encoding="utf-8") as fh:
        return [Record.from_json(json.loads(line)) for line in fh if line.strip()]


def report_for(records: Sequence[Record], args: argparse.Namespace) -> dict:
    """The scores, abstention on uncovered questions, and (PubMedQA) decision accuracy."""
    from chat.sentences import SentenceVectors
    from models.embedder import Embedder

    scores: Scores = score(records, SentenceVectors(Embedder()))
    uncovered = [r for r in records if not r.papers]
    modes = sorted({r.model or "extractive" for r in records})
    out = {"mode": ", ".join(modes), **scores.to_json(),
           "abstained_uncovered": round(sum(r.abstained for r in uncovered) / len(uncovered), 4) if uncovered else None}
    decided = [r for r in records if r.kind.startswith("decision:")]
    if decided:
        right = sum(decision(r.answer) == r.kind.split(":", 1)[1] for r in decided)
        out["decision_accuracy"] = round(right / len(decided), 4)
        out["decision_answered"] = round(sum(bool(decision(r.answer)) for r in decided) / len(decided), 4)
    return out


def table(report: dict) -> str:
    return "\n".join(f"  {key:<22} {value}" for key, value in report.items())


def print_audit(records: Sequence[Record], n: int, seed: int = 0) -> None:
    """Random cited claims beside the sentence of the cited abstract they match best, to read by hand."""
    from benchmarks.answer_metrics import claims
    from chat.sentences import split_sentences
    from chat.support import judge

    pairs = [(r, c, nums) for r in records if not r.abstained for c, nums in claims(r.answer)
             if nums and 1 <= nums[0] <= len(r.cited)]
    for r, claim, nums in random.Random(seed).sample(pairs, min(n, len(pairs))):
        verdict = judge(claim, split_sentences(r.cited[nums[0] - 1][1]), None)
        print(f"\nQ: {r.question}\nclaim [{nums[0]}]: {claim}\nsource: {verdict.sentence}")


if __name__ == "__main__":
    sys.exit(main())
