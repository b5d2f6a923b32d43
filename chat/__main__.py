"""Command line: ``python -m chat ask "QUESTION" ["QUESTION" ...]``.

Models load once; each question is answered in turn, independently, or with
``--conversation`` as successive turns of one conversation (each turn sees the earlier
questions and answers, as in the app, so "and how much memory does it save?" is
rewritten into a standalone query first). ``--json`` prints one JSON object per
question, one per line (with its ``standalone_query``); otherwise readable text with the
cited sources at the end; control characters in stored text are printed escaped. The
model comes from ``--model``, else ``PAPERCHAT_MODEL``, else the default model
(models/llm.py), downloaded once; offline before that download, or with ``--model none``,
answers are extractive (a note says why).

    python -m chat ask "How does QLoRA save memory?" --index index --json
    python -m chat ask --conversation "What is QLoRA?" "and how much memory does it save?" --json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chat", description="Ask questions of the indexed papers.")
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer questions, citing the indexed abstracts")
    ask.add_argument("questions", nargs="+", metavar="QUESTION", help="one or more questions, answered in turn")
    ask.add_argument("--index", default=os.environ.get("PAPERCHAT_INDEX") or "index",
                     help="index directory (default: $PAPERCHAT_INDEX, else ./index)")
    ask.add_argument("--chroma-host", default=os.environ.get("CHROMA_HOST") or None,
                     help="use the Chroma server at HOST instead of --index (default: $CHROMA_HOST)")
    ask.add_argument("--chroma-port", type=int, default=int(os.environ.get("CHROMA_PORT") or 8000),
                     help="the Chroma server's port (default: $CHROMA_PORT, else 8000)")
    ask.add_argument("--model", help="GGUF file, 'owner/repo:file.gguf', 'default' (Qwen2.5-1.5B-Instruct, "
                                     "downloaded once), or 'none' for extractive answers (default: "
                                     "$PAPERCHAT_MODEL, else 'default'; offline and not downloaded: extractive)")
    ask.add_argument("--k", type=int, default=5, help="papers retrieved per question (default 5)")
    ask.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid",
                     help="retrieval: dense + keyword fused (default), or one side alone")
    ask.add_argument("--year-min", type=int, help="only papers from this year on")
    ask.add_argument("--year-max", type=int, help="only papers up to this year")
    ask.add_argument("--category", help="only papers in this arXiv category (cs.CL; 'cs' keeps cs.*)")
    ask.add_argument("--author", help="only papers with an author whose name contains this (any case)")
    ask.add_argument("--ids", help="only these papers: comma-separated arXiv ids (any version or URL form)")
    ask.add_argument("--n-ctx", type=int, default=4096, help="model context in tokens (default 4096)")
    ask.add_argument("--max-tokens", type=int, default=320, help="longest answer in tokens (default 320)")
    ask.add_argument("--threads", type=int, help="llama.cpp threads (default: every core)")
    ask.add_argument("--device", default="auto", help="embedding device: auto (CUDA, else MPS, else CPU), cpu, cuda, "
                                                       "cuda:N, mps (default auto)")
    ask.add_argument("--gpu-layers", type=int, help="layers llama.cpp puts on the GPU (default: all when it was built "
                                                    "with GPU support, else 0)")
    ask.add_argument("--full-abstracts", action="store_true", help="give the model whole abstracts, not the "
                                                                   "most relevant sentences")
    ask.add_argument("--no-abstain", action="store_true", help="answer even when the evidence is weak")
    ask.add_argument("--conversation", action="store_true",
                     help="answer the questions as successive turns of one conversation (follow-ups allowed)")
    ask.add_argument("--json", action="store_true", help="one JSON object per question, one per line")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error("--k must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from models.tokens import use_bundled_encodings

    use_bundled_encodings(os.environ)  # prompt budgets count tokens: works offline on a fresh machine
    args = parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the edge: every failure becomes one readable line, never a traceback
        from models.errors import PaperChatError

        known = isinstance(exc, (PaperChatError, ValueError))
        print(f"error: {exc}" if known else f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from chat.answer import AnswerConfig
    from chat.setup import open_answerer
    from ingest.store import StoreConfig
    from models.llm import LLMConfig

    store_config = StoreConfig(path=args.index, host=args.chroma_host, port=args.chroma_port)
    model = args.model if args.model is not None else (os.environ.get("PAPERCHAT_MODEL") or "default")
    config = AnswerConfig(k=args.k, mode=args.mode)
    config = replace(config, prompt=replace(config.prompt, answer_tokens=args.max_tokens,
                                            focus=not args.full_abstracts),
                     abstain=replace(config.abstain, enabled=not args.no_abstain))
    answerer = open_answerer(store_config, model_spec=model, answer_config=config,
                             llm_config=LLMConfig(n_ctx=args.n_ctx, max_tokens=args.max_tokens,
                                                  n_threads=args.threads, n_gpu_layers=args.gpu_layers),
                             device=args.device,
                             progress=_Progress(), must_exist=not args.chroma_host)
    for note in answerer.notes:
        print(f"note: {note}", file=sys.stderr)
    filters = _filters(args)
    history: list[tuple[str, str]] = []  # (question, answer text) pairs, as the app passes them
    for question in args.questions:
        answer = answerer.ask(question, history=history, k=args.k, filters=filters)
        if args.conversation:
            history.append((question, answer.answer))
        if args.json:
            print(_safe(json.dumps(answer.to_json(), ensure_ascii=False), "\\u{:04x}"), flush=True)
        else:
            print(_safe(format_answer(answer)), flush=True)
    return 0


def _filters(args: argparse.Namespace):
    if all(v is None for v in (args.year_min, args.year_max, args.category, args.author, args.ids)):
        return None
    from chat.retrieve import Filters

    ids = tuple(i.strip() for i in args.ids.split(",") if i.strip()) if args.ids is not None else None
    return Filters(year_min=args.year_min, year_max=args.year_max, category=args.category, author=args.author,
                   paper_ids=ids)


def format_answer(answer) -> str:
    """Readable text: question, answer, then the cited papers with their supporting sentences."""
    lines = [f"Q: {answer.question}"]
    if answer.standalone_query and answer.standalone_query != answer.question:
        lines.append(f"   (searched as: {answer.standalone_query})")
    if getattr(answer, "filters", None) is not None:
        lines.append(f"   (filters: {answer.filters.describe()})")
    lines += ["", answer.answer, ""]
    lines += [f"note: {note}" for note in answer.notes]  # e.g. why the model's text was replaced
    if answer.citations:
        lines.append("Sources:")
        for c in answer.citations:
            flag = "" if c.supported else "  (not supported by this abstract)"
            lines.append(f"[{c.n}] {c.title}" + (f" — {c.url}" if c.url else f" — {c.paper_id}") + flag)
            lines.append(f'    "{c.supporting_sentence}"')
        lines.append("")
    mode = f"model {answer.model}" if answer.mode == "llm" else "extractive"
    lines.append(f"({mode} · {answer.timings.get('total', 0.0):.2f} s)")
    return "\n".join(lines) + "\n"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _safe(text: str, escape: str = "\\x{:02x}") -> str:
    r"""Text for the terminal: control characters (ESC, BEL, C1 ...) shown escaped, never interpreted.

    >>> _safe("Title\x1b]0;owned\x07 ok"), _safe('"a\x9bb"', "\\u{:04x}")
    ('Title\\x1b]0;owned\\x07 ok', '"a\\u009bb"')
    """
    return _CONTROL.sub(lambda m: escape.format(ord(m.group())), text)


class _Progress:
    """Download progress on stderr, at most every half second and once at 100%."""

    def __init__(self):
        self.last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if now - self.last < 0.5 and not finished:
            return
        self.last = now
        size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else f"{done / 1e6:.1f} MB"
        print(f"Downloading model: {size}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
