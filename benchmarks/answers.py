"""Quality of the full answer path: is the right paper cited, are citations valid and supported, does it abstain?

Questions come from a BEIR-layout dataset (``--beir DIR``: its corpus is ingested into the
cached index that ``benchmarks.retrieval`` uses) or from a JSON-lines file
(``--questions FILE``: ``{"question", "paper_id"}`` rows over the seed corpus, ``paper_id``
null for a question the papers do not cover). ``--ood FILE`` adds out-of-domain questions,
one per line, which should all be abstained on.

    python -m benchmarks.answers --beir ../shared/data/pubmedqa --split train --ood benchmarks/ood_questions.txt
    python -m benchmarks.answers --questions benchmarks/seed_questions.jsonl --ood benchmarks/ood_questions.txt

Reported: gold paper cited (share of in-domain questions), gold retrieved, citation validity
before the checker (share of the model's markers that map to a retrieved source) and after
it (always 1.0 by construction, measured anyway), invalid markers removed, unsupported
sentences (share of checked sentences), abstention in-domain and out-of-domain, seconds per answer.

>>> r = QuestionResult("q", ("a",), ("a", "b"), ("a",), False, 2, 1, 1, 1, 0, 3, 1.5)
>>> report = summarise("demo", "train", "extractive", "", [r], [])
>>> report.gold_cited, report.citation_validity_raw, report.citation_validity
(1.0, 0.5, 1.0)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from chat.citations import parse_markers

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True)
class QuestionResult:
    question: str
    gold: tuple[str, ...]  # empty: out of domain (should abstain)
    retrieved: tuple[str, ...]
    cited: tuple[str, ...]
    abstained: bool
    markers: int  # citation numbers the model wrote
    removed: int  # of those, numbers mapping to no source
    final_markers: int  # citation numbers in the checked answer
    final_valid: int  # of those, numbers mapping to a listed citation
    unsupported: int
    checked: int  # sentences the checker looked at
    seconds: float


@dataclass(frozen=True)
class AnswersReport:
    dataset: str
    split: str
    mode: str
    model: str
    questions: int
    ood_questions: int
    gold_cited: float
    gold_cited_answered: float  # among in-domain questions that were answered
    gold_retrieved: float
    citation_validity_raw: float
    citation_validity: float
    invalid_markers_removed: int
    markers: int
    unsupported_rate: float
    abstention_in_domain: float
    abstention_ood: float
    seconds_per_answer: float
    seconds_p50: float

    def to_json(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def table(self) -> str:
        rows = [f"{self.dataset} ({self.split}): {self.questions} questions + {self.ood_questions} out-of-domain, "
                f"mode {self.mode}{' ' + self.model if self.model else ''}"]
        for key, value in self.to_json().items():
            if key not in ("dataset", "split", "mode", "model", "questions", "ood_questions"):
                rows.append(f"  {key:<24} {value}")
        return "\n".join(rows)


def _rate(part: float, whole: float, empty: float = 0.0) -> float:
    return part / whole if whole else empty


def summarise(dataset: str, split: str, mode: str, model: str, results: Sequence[QuestionResult],
              ood: Sequence[QuestionResult]) -> AnswersReport:
    """Aggregate per-question results into the report."""
    answered = [r for r in results if not r.abstained]
    everything = list(results) + list(ood)
    markers = sum(r.markers for r in everything)
    final = sum(r.final_markers for r in everything)
    seconds = [r.seconds for r in everything] or [0.0]
    return AnswersReport(
        dataset, split, mode, model, len(results), len(ood),
        gold_cited=_rate(sum(bool(set(r.gold) & set(r.cited)) for r in results), len(results)),
        gold_cited_answered=_rate(sum(bool(set(r.gold) & set(r.cited)) for r in answered), len(answered)),
        gold_retrieved=_rate(sum(bool(set(r.gold) & set(r.retrieved)) for r in results), len(results)),
        citation_validity_raw=_rate(markers - sum(r.removed for r in everything), markers, 1.0),
        citation_validity=_rate(sum(r.final_valid for r in everything), final, 1.0),
        invalid_markers_removed=sum(r.removed for r in everything), markers=markers,
        unsupported_rate=_rate(sum(r.unsupported for r in everything), sum(r.checked for r in everything)),
        abstention_in_domain=_rate(sum(r.abstained for r in results), len(results)),
        abstention_ood=_rate(sum(r.abstained for r in ood), len(ood)),
        seconds_per_answer=statistics.fmean(seconds), seconds_p50=statistics.median(seconds))


def answer_one(answerer, question: str, gold: Sequence[str], k: int) -> QuestionResult:
    answer = answerer.ask(question, k=k)
    numbers = [n for m in parse_markers(answer.answer) for n in m.numbers]
    return QuestionResult(
        question, tuple(gold), tuple(h.paper.paper_id for h in answer.retrieved),
        tuple(c.paper_id for c in answer.citations), answer.abstained, answer.markers_total, answer.removed_markers,
        len(numbers), sum(1 for n in numbers if 1 <= n <= len(answer.citations)), answer.unsupported,
        len(answer.checks), answer.timings.get("total", 0.0))


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
    for name in sorted(os.listdir(samples)):
        with open(os.path.join(samples, name), "rb") as fh:
            digest.update(name.encode() + fh.read())
    folder = os.path.join(cache, f"seeds-{digest.hexdigest()[:12]}-{embedder.name.replace('/', '_')}")
    cached_index([samples], embedder, folder)
    return os.path.join(folder, "index")


def read_questions(path: str) -> list[tuple[str, tuple[str, ...]]]:
    """JSON lines of {"question", "paper_id"} (paper_id null or a list allowed)."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                gold = row.get("paper_id") or ()
                rows.append((row["question"], tuple([gold] if isinstance(gold, str) else gold)))
    return rows


def read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip() and not line.startswith("#")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.answers", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--beir", help="BEIR-layout dataset directory")
    source.add_argument("--questions", help="JSON lines of {question, paper_id} over --index (default: the seeds)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--index", help="index directory for --questions (default: the seed corpus, cached)")
    parser.add_argument("--ood", help="out-of-domain questions, one per line")
    parser.add_argument("--limit", type=int, help="answer at most this many in-domain questions")
    parser.add_argument("--model", help="GGUF file or owner/repo:file.gguf (default: extractive)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: every core)")
    parser.add_argument("--index-cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--dump", help="write one JSON line per question here")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except Exception as exc:  # the edge: a readable line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_json()) if args.json else report.table())
    return 0


def run(args: argparse.Namespace) -> AnswersReport:
    from chat.setup import open_answerer
    from ingest.store import StoreConfig
    from models.embedder import Embedder
    from models.llm import LLMConfig

    embedder = Embedder()
    if args.beir:
        index, questions = beir_questions(args.beir, args.split, embedder, args.index_cache)
        name = os.path.basename(os.path.normpath(args.beir))
    else:
        index = args.index or seed_index(embedder, args.index_cache)
        questions, name = read_questions(args.questions), os.path.basename(args.questions)
    questions = questions[:args.limit] if args.limit else questions
    answerer = open_answerer(StoreConfig(path=index), model_spec=args.model, require_model=bool(args.model),
                             llm_config=LLMConfig(n_ctx=args.n_ctx, n_threads=args.threads), must_exist=True)
    results = [answer_one(answerer, q, gold, args.k) for q, gold in questions]
    ood = [answer_one(answerer, q, (), args.k) for q in read_lines(args.ood)] if args.ood else []
    in_domain = [r for r in results if r.gold]
    uncovered = [r for r in results if not r.gold]  # e.g. seed questions the papers do not answer
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as fh:
            for r in results + ood:
                fh.write(json.dumps(asdict(r)) + "\n")
    return summarise(name, args.split if args.beir else "-", answerer.mode,
                     answerer.llm.name if answerer.llm else "", in_domain, uncovered + ood)


if __name__ == "__main__":
    sys.exit(main())
