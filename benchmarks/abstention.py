"""Abstention where it is hard, and follow-ups: rates per question set through the full answer path.

Our own sets (``benchmarks/questions/``, over the sample papers; each file says how it was made):

- ``near_domain.txt``: ML/NLP/CV/biomedical questions that no sample paper answers (should be "not covered");
- ``named_papers.jsonl``: questions naming an indexed paper, about facts its abstract states (answered, from it);
- ``long_questions.jsonl``: ~150-word research questions with the papers that cover them (answered);
- ``followups.jsonl``: scripted conversations, each turn with its expected subject and paper;
  ``followups_holdout.jsonl``: 15 more, written later by someone who had not seen the answers;
  ``followups_uncovered.jsonl``: 30 whose follow-up asks what the paper's abstract does not say.

Plus the seed questions (covered and uncovered), the far out-of-domain questions
(``benchmarks/ood_questions.txt``) asked of every index, and with ``--beir`` the training
questions of SciFact/PubMedQA over their own corpora. SciFact's are also reported in two parts:
claims whose judged abstract holds rationale sentences, and its "not enough info" claims, whose
judged abstract holds none (for those "not covered" is not wrong). Each of our sets is split in two by a
hash of the question (:func:`part`): the calibration half tunes ``chat/abstain.py``
(``python -m benchmarks.calibrate abstention``), the held-out half only reports. Answers are
extractive (the gate decides before any model runs), so a full run takes minutes. With ``--model``
only the follow-up sets run, the model rewriting each follow-up and writing each answer (the
cited paper is then the model's): with the 1.5B the 24 development conversations alone take
about 17 minutes.

    python -m benchmarks.abstention [--beir ../shared/data/scifact --beir ../shared/data/pubmedqa] [--json]
    python -m benchmarks.abstention --model ~/.cache/paperchat/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    python -m benchmarks.abstention --peek benchmarks/questions/near_domain.txt   # how absence was checked

>>> part("How does the Adam optimizer correct the bias of its moment estimates?")
'held'
>>> summarise([Row("q", (), True, (), "q"), Row("r", (), False, (), "r")]).not_covered
0.5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

QUESTIONS = Path(__file__).resolve().parent / "questions"
OOD = Path(__file__).resolve().parent / "ood_questions.txt"
SEEDS = Path(__file__).resolve().parent / "seed_questions.jsonl"


def part(question: str) -> str:
    """'cal' or 'held': a fixed half of every set, by a hash of the question's text."""
    return "cal" if hashlib.sha1(question.encode("utf-8")).digest()[0] % 2 == 0 else "held"


@dataclass(frozen=True)
class Row:
    question: str
    gold: tuple[str, ...]  # empty: not covered (should abstain)
    abstained: bool
    cited: tuple[str, ...]
    standalone: str
    support: float = 0.0  # the gate's score (chat.abstain.Evidence.support)
    absent: float = 0.0  # 1.0: the question names something no top paper mentions


@dataclass(frozen=True)
class Rate:
    questions: int
    not_covered: float  # share answered "not covered"
    gold_cited: float | None  # share citing a gold paper (covered sets)
    gold_first: float | None  # share citing a gold paper first


def summarise(rows: Sequence[Row]) -> Rate:
    covered = [r for r in rows if r.gold]
    share = (lambda xs: sum(xs) / len(xs)) if rows else (lambda xs: 0.0)
    cited = [bool(set(r.gold) & set(r.cited)) for r in covered]
    first = [bool(r.cited) and r.cited[0] in r.gold for r in covered]
    return Rate(len(rows), share([r.abstained for r in rows]), share(cited) if covered else None,
                share(first) if covered else None)


def _answerer(index: str):
    from chat.answer import Answerer
    from chat.retrieve import Retriever
    from ingest.store import Store, StoreConfig
    from models.embedder import Embedder

    embedder = Embedder()
    store = Store.open(StoreConfig(path=index), embedder.name, embedder.dim)
    return Answerer(Retriever(store, embedder, keyword_dir=tempfile.mkdtemp(prefix="abst-kw-")), None,
                    embedder=embedder)


def ask(answerer, question: str, gold: Sequence[str] = (), history: Sequence[tuple[str, str]] = ()) -> Row:
    answer = answerer.ask(question, history=list(history))
    evidence = answer.evidence
    return Row(question, tuple(gold), answer.abstained, tuple(c.paper_id for c in answer.citations),
               answer.standalone_query, evidence.support if evidence else 0.0, evidence.absent if evidence else 0.0)


def read_set(name: str) -> list[tuple[str, tuple[str, ...]]]:
    """(question, gold paper ids) of one of our sets."""
    path = QUESTIONS / name
    if path.suffix == ".txt":
        return [(line.strip(), ()) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["question"], tuple([r["paper_id"]] if isinstance(r["paper_id"], str) else r["paper_id"]))
            for r in rows]


def own_sets(answerer) -> dict[str, list[Row]]:
    """Our sets over the sample papers, keyed 'set/part'."""
    out: dict[str, list[Row]] = {}
    for name, label in (("near_domain.txt", "near-domain uncovered"), ("named_papers.jsonl", "naming a paper"),
                        ("long_questions.jsonl", "long questions")):
        for question, gold in read_set(name):
            out.setdefault(f"{label}/{part(question)}", []).append(ask(answerer, question, gold))
    return out


def followups(answerer, path: Path = QUESTIONS / "followups.jsonl") -> dict[str, float]:
    """Scripted conversations, history passed as the app passes it: (question, answer text) pairs.
    A follow-up whose ``paper_id`` is null should be "not covered"; the others, answered from their paper."""
    kept, new, first, cited, uncovered, turns = [], [], [], [], [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        history: list[tuple[str, str]] = []
        for i, turn in enumerate(json.loads(line)["turns"]):
            answer = answerer.ask(turn["question"], history=history)
            ids = [c.paper_id for c in answer.citations]
            if i and turn["subject"]:
                kept.append(_flat(turn["subject"]) in _flat(answer.standalone_query))
            elif i:
                new.append(answer.standalone_query == turn["question"])
            if i and not turn["paper_id"]:
                uncovered.append(answer.abstained)
            elif i:
                gold = [turn["paper_id"]] if isinstance(turn["paper_id"], str) else turn["paper_id"]
                first.append(bool(ids) and ids[0] in gold)
                cited.append(bool(set(gold) & set(ids)))
            history.append((turn["question"], answer.answer))
            turns += 1
    share = lambda xs: round(sum(xs) / len(xs), 4) if xs else 0.0  # noqa: E731
    return {"turns": turns, "follow_ups": len(first) + len(uncovered), "subject_kept": share(kept),
            "new_topic_recognised": share(new), "right_paper_first": share(first), "right_paper_cited": share(cited),
            "uncovered": len(uncovered), "not_covered_when_uncovered": share(uncovered)}


def _flat(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def run(args: argparse.Namespace) -> dict:
    from benchmarks.answers import beir_questions, read_lines, read_questions, seed_index
    from benchmarks.beir import load_beir
    from models.embedder import Embedder

    embedder = Embedder()
    ood = read_lines(str(OOD))
    seeds = _answerer(seed_index(embedder, args.index_cache))
    sets: dict[str, list[Row]] = {
        "seed questions, covered": [ask(seeds, q, g) for q, g in read_questions(str(SEEDS)) if g],
        "seed questions, uncovered": [ask(seeds, q) for q, g in read_questions(str(SEEDS)) if not g],
        "far out-of-domain @ samples": [ask(seeds, q) for q in ood],
        **own_sets(seeds)}
    for directory in args.beir:
        name = os.path.basename(os.path.normpath(directory))
        index, questions = beir_questions(directory, args.split, embedder, args.index_cache)
        answerer = _answerer(index)
        rows = [ask(answerer, q, g) for q, g in questions]
        sets[f"{name} {args.split} (in-domain)"] = rows
        dataset = load_beir(directory, args.split)
        unanswered = {dataset.queries[q] for q in dataset.without_evidence}
        if unanswered:  # SciFact: claims whose abstract holds a rationale, and those whose abstract holds none
            sets[f"{name} {args.split}, evidence in the abstract"] = [r for r in rows if r.question not in unanswered]
            sets[f"{name} {args.split}, no evidence in the abstract"] = [r for r in rows if r.question in unanswered]
        sets[f"far out-of-domain @ {name}"] = [ask(answerer, q) for q in ood]
    report = {"sets": {name: asdict(summarise(rows)) for name, rows in sets.items()},
              **{name: followups(seeds, QUESTIONS / f"{name}.jsonl") for name in FOLLOWUP_SETS}}
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as fh:
            for name, rows in sets.items():
                for row in rows:
                    fh.write(json.dumps({"set": name, **asdict(row)}, ensure_ascii=False) + "\n")
    return report


FOLLOWUP_SETS = ("followups", "followups_holdout", "followups_uncovered")


def with_model(args: argparse.Namespace) -> dict:
    """The follow-up sets only, with ``args.model`` rewriting each follow-up and writing each answer, as the app
    does with a model (single questions need no run of their own: the gate decides before any model is used)."""
    from benchmarks.answers import seed_index
    from chat.setup import open_answerer
    from ingest.store import StoreConfig
    from models.embedder import Embedder

    answerer = open_answerer(StoreConfig(path=seed_index(Embedder(), args.index_cache)), model_spec=args.model,
                             require_model=True, must_exist=True)
    return {"sets": {}, **{name: followups(answerer, QUESTIONS / f"{name}.jsonl") for name in FOLLOWUP_SETS}}


def table(report: dict) -> str:
    lines = ["| set | questions | \"not covered\" | right paper cited (first) |", "| --- | ---: | ---: | ---: |"]
    for name, r in report["sets"].items():
        gold = "" if r["gold_cited"] is None else f"{100 * r['gold_cited']:.1f}% ({100 * r['gold_first']:.1f}%)"
        lines.append(f"| {name} | {r['questions']} | {100 * r['not_covered']:.1f}% | {gold} |")
    for name in FOLLOWUP_SETS:
        f = report[name]
        lines.append(f"\n{name}: {f['follow_ups']} in {f['turns']} turns; subject kept {100 * f['subject_kept']:.1f}%, "
                     f"new topic recognised {100 * f['new_topic_recognised']:.1f}%, right paper cited first "
                     f"{100 * f['right_paper_first']:.1f}% (cited at all {100 * f['right_paper_cited']:.1f}%)"
                     + (f", \"not covered\" {100 * f['not_covered_when_uncovered']:.1f}% of {f['uncovered']} that "
                        "no paper answers" if f["uncovered"] else ""))
    return "\n".join(lines)


def peek(path: str, index_cache: str, k: int = 3) -> Iterable[str]:
    """Each question with its top papers and their sentence closest to it: how absence is checked by reading."""
    import numpy as np

    from benchmarks.answers import read_lines, seed_index
    from chat.sentences import display_title, split_sentences
    from models.embedder import Embedder

    answerer = _answerer(seed_index(Embedder(), index_cache))
    for question in read_lines(path):
        yield f"Q: {question}"
        for hit in answerer.retriever.search(question, k=k):
            sentences = split_sentences(hit.paper.abstract) or [hit.paper.abstract]
            vectors = answerer.vectors([question, *sentences])
            best = sentences[int(np.argmax(vectors[1:] @ vectors[0]))]
            title = display_title(hit.paper.title, hit.paper.abstract, hit.paper.paper_id)
            yield f"   {hit.dense:.3f} {title[:60]!r}: {best[:200]}"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.answers import DEFAULT_CACHE

    parser = argparse.ArgumentParser(prog="python -m benchmarks.abstention", description=__doc__.split("\n\n")[0])
    parser.add_argument("--beir", action="append", default=[], help="a BEIR dataset: its training questions "
                                                                    "in-domain, over its own corpus")
    parser.add_argument("--split", default="train")
    parser.add_argument("--index-cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--dump", help="write one JSON line per question here")
    parser.add_argument("--peek", help="print each question's top papers and closest sentences, nothing else")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--model", help="a GGUF file: run only the follow-up sets, with this model rewriting and "
                                        "answering (measurement only; the other sets do not depend on a model)")
    args = parser.parse_args(argv)
    if args.peek:
        for line in peek(args.peek, args.index_cache):
            print(line)
        return 0
    report = with_model(args) if args.model else run(args)
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
