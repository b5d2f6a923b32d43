"""``python -m ingest``: build or update a paper index, or describe one.

    python -m ingest data/samples                        # into $PAPERCHAT_INDEX, else ./index
    python -m ingest snapshot.json --category cs.CL --since 2023-01-01 --index idx
    python -m ingest "arxiv:retrieval augmented generation" --max-results 50
    python -m ingest --stats --json
    python -m ingest --list [--json]                     # every paper: name, id, year, source, chunks
    python -m ingest --enrich                            # titles, authors, dates, links from arXiv
    python -m ingest --rechunk                           # after the chunker or embedding window changed
    python -m ingest --check [--repair]                  # every paper whole: chunks, vectors, keyword index

The only place (with ``app.py``) that reads environment variables and flags; every
failure becomes one line on stderr, never a traceback.

>>> main(["--stats", "--index", "/nonexistent/index"])
2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from contextlib import nullcontext

# Before transformers is imported: its "Loading weights" bars are noise on a command line.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from ingest.lock import IndexBusyError  # noqa: E402
from ingest.pipeline import IngestOptions, IngestProgress, IngestReport  # noqa: E402
from ingest.source_types import FORMATS, ReadOptions  # noqa: E402
from models.embedder import EmbedderConfig  # noqa: E402
from models.errors import PaperChatError  # noqa: E402
from models.tokens import use_bundled_encodings  # noqa: E402
from ingest.untrusted import printable  # noqa: E402

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_LOG_EVERY_S = 5.0  # progress lines when stderr is not a terminal (logs, CI)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read paper abstracts into a persistent, deduplicated search index.",
        epilog="SOURCE is a file, a directory (read recursively), 'arxiv:<search words or query>', "
               "'arxiv:<id>[,<id>...]' or 'hf:<dataset>[:<split>]'.\n"
               "Exit status: 0 done, 1 some input was rejected (the rest is ingested), 2 usage or user error, "
               "3 unexpected failure, 130 interrupted (run the same command again to finish).\n"
               "One process writes an index at a time: another ingest (or --rechunk, --enrich, --check --repair) "
               "waits for it, or with --no-wait exits 2 naming it; searches go on meanwhile.")
    parser.add_argument("sources", nargs="*", metavar="SOURCE", help="where to read papers from")
    parser.add_argument("--index", metavar="DIR", default=os.environ.get("PAPERCHAT_INDEX") or "index",
                        help="index directory (default: $PAPERCHAT_INDEX, else ./index)")
    parser.add_argument("--format", choices=FORMATS, help="force a format instead of detecting it per file")
    parser.add_argument("--category", help="keep only papers in this arXiv category (cs.CL; 'cs' keeps cs.*)")
    parser.add_argument("--since", metavar="DATE", help="keep only papers dated on or after DATE (2023-01-01)")
    parser.add_argument("--max-results", type=int, metavar="N",
                        help="most papers taken from a remote source (default: 100 for arxiv: searches)")
    parser.add_argument("--model", default=EmbedderConfig().model,
                        help="embedding model name or local path (default: %(default)s); an existing index "
                             "must be opened with the model it was built with")
    parser.add_argument("--chroma-host", default=os.environ.get("CHROMA_HOST") or None, metavar="HOST",
                        help="use the Chroma server at HOST instead of --index (default: $CHROMA_HOST)")
    parser.add_argument("--chroma-port", type=int, default=os.environ.get("CHROMA_PORT") or "8000",
                        metavar="PORT", help="the Chroma server's port (default: $CHROMA_PORT, else 8000)")
    parser.add_argument("--batch-size", type=int, default=IngestOptions().batch_size, metavar="N",
                        help="papers embedded and written together (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="embedding device: auto (CUDA, else MPS, else CPU), cpu, "
                                                          "cuda, cuda:N, mps (default auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress and no summary; rejections and errors only")
    parser.add_argument("--stats", action="store_true",
                        help="print the index's paper and chunk counts, embedding model and sources, then exit")
    parser.add_argument("--json", action="store_true", help="with --stats or --list: print JSON")
    parser.add_argument("--list", action="store_true",
                        help="print every indexed paper (name, id, year, source file, chunks) and the totals, then exit")
    parser.add_argument("--enrich", action="store_true",
                        help="look up papers without a title or arXiv id on the arXiv API (by id, else by their text; "
                             "only confident matches) and fill in title, authors, date, categories and link, then exit")
    parser.add_argument("--no-enrich", action="store_true",
                        help="do not look up new papers without a title or arXiv id on arXiv after an ingest "
                             "(done by default when the arXiv API can be reached)")
    parser.add_argument("--arxiv-url", default=os.environ.get("PAPERCHAT_ARXIV_URL") or None, help=argparse.SUPPRESS)
    parser.add_argument("--rechunk", action="store_true",
                        help="re-cut and re-embed every paper already in the index with today's chunker, then exit")
    parser.add_argument("--check", action="store_true",
                        help="verify that every paper has all its chunks and vectors, the keyword index matches and "
                             "the chunker is recorded, then exit (status 1 when something is missing)")
    parser.add_argument("--repair", action="store_true",
                        help="with --check: fix what is missing, re-embedding only that")
    parser.add_argument("--no-wait", action="store_true",
                        help="when another process is writing the index, exit with status 2 naming it "
                             "instead of waiting for it to finish")
    return parser


def main(argv: list[str] | None = None) -> int:
    use_bundled_encodings(os.environ)  # chunking counts tokens: works offline on a fresh machine
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.check = args.check or args.repair
        actions = [name for name in ("stats", "rechunk", "list", "enrich", "check") if getattr(args, name)]
        if actions:
            if args.sources or len(actions) > 1:
                parser.error("--stats, --list, --enrich, --rechunk and --check take no SOURCE, and go alone")
            return {"stats": _stats, "rechunk": _rechunk, "list": _list, "enrich": _enrich,
                    "check": _check}[actions[0]](args)
        if args.json:
            parser.error("--json goes with --stats or --list")
        if not args.sources:
            parser.error("give at least one SOURCE (or --stats)")
        return _ingest(args)
    except IndexBusyError as exc:
        print(printable(f"error: {exc}; run again when it is done (without --no-wait, ingest waits for it)",
                        newlines=False), file=sys.stderr)
        return EXIT_USAGE
    except (PaperChatError, ValueError) as exc:
        print(printable(f"error: {exc}", newlines=False), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: run the same command again to finish the ingest", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug or a failing dependency: one line, the details on request
        if os.environ.get("PAPERCHAT_DEBUG"):
            raise
        print(printable(f"error: unexpected {type(exc).__name__}: {exc} (set PAPERCHAT_DEBUG=1 for details)",
                        newlines=False), file=sys.stderr)
        return EXIT_INTERNAL


def _store_config(args: argparse.Namespace):
    from ingest.store import StoreConfig  # chromadb is slow to import: not for --help

    return StoreConfig(path=args.index, host=args.chroma_host, port=args.chroma_port)


def _writer(args: argparse.Namespace):
    """Hold the index's writer lock for a writing command: wait with a message, or with --no-wait fail."""
    from ingest.store import Store

    def waiting(holder) -> None:
        who = holder.describe() if holder else "another process"
        print(printable(f"waiting: the index is being written by {who}; this run starts when it is done "
                        "(Ctrl-C stops; --no-wait exits instead)", newlines=False), file=sys.stderr, flush=True)
    def took_over(holder) -> None:
        print(printable(f"note: took over the index lock left by {holder.describe()}, which is no longer running",
                        newlines=False), file=sys.stderr, flush=True)
    return Store.writer(_store_config(args), wait=not args.no_wait, on_wait=waiting, on_takeover=took_over)


def _stats(args: argparse.Namespace) -> int:
    from ingest.store import Store

    stats = Store.open_existing(_store_config(args)).stats()
    if args.json:
        print(json.dumps({"index": stats.location, "papers": stats.papers, "chunks": stats.chunks,
                          "model": stats.model, "dim": stats.dim, "chunker": stats.chunker,
                          "sources": list(stats.sources)}, indent=2))
        return EXIT_OK
    print(printable(f"index:   {stats.location}\npapers:  {stats.papers}\nchunks:  {stats.chunks}\n"
                    f"model:   {stats.model} ({stats.dim} dimensions)\nchunker: {stats.chunker or 'not recorded'}\n"
                    f"sources: {len(stats.sources)}"))
    for source in stats.sources:
        print(printable(f"  {source}", newlines=False))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from ingest.library import format_rows, read_library
    from ingest.store import Store

    library = read_library(Store.open_existing(_store_config(args)))
    print(json.dumps(library.to_json(), indent=2, ensure_ascii=False) if args.json else printable(format_rows(library)))
    return EXIT_OK


def _read_options(args: argparse.Namespace, **extra) -> ReadOptions:
    return ReadOptions(**({"arxiv_base_url": args.arxiv_url} if args.arxiv_url else {}), **extra)


def _enrich(args: argparse.Namespace, papers=None, store=None, embedder=None) -> int:
    """Look up papers without a title or id on arXiv: all of the index (--enrich), or ``papers`` after an ingest."""
    from ingest.enrich import enrich
    from ingest.store import Store
    from models.embedder import Embedder

    with _writer(args):
        store = store or Store.open_existing(_store_config(args))
        model = store.meta.model
        report = enrich(store, embedder or (lambda: Embedder(EmbedderConfig(model=model, device=args.device))), papers, _read_options(args))
    if report.looked_up and not args.quiet:
        print(report.summary(), file=sys.stderr)
    return EXIT_REJECTED if report.offline and args.enrich else EXIT_OK


def _ingest(args: argparse.Namespace) -> int:
    from ingest.enrich import needs_enrichment
    from ingest.pipeline import ingest
    from ingest.progress import estimate_total
    from ingest.remote import is_remote
    from ingest.store import Store
    from models.embedder import Embedder

    missing = [s for s in args.sources if not is_remote(s) and not os.path.exists(s)]
    if missing:
        raise PaperChatError(f"no such file or directory: {', '.join(missing)}")
    read = _read_options(args, format=args.format, category=args.category, since=args.since,
                         max_results=args.max_results)
    options = IngestOptions(read=read, batch_size=args.batch_size)
    embedder = Embedder(EmbedderConfig(model=args.model, device=args.device))
    with _writer(args):
        store = Store.open(_store_config(args), embedder.name, embedder.dim)
        before = None if args.no_enrich else set(store.paper_ids())
        total = estimate_total(args.sources, read) if not args.quiet else None
        with _Progress(enabled=not args.quiet, total=total.count if total else None) as progress:
            report = ingest(args.sources, store, embedder, options, progress=progress)
        if before is not None:  # the papers this run added that lack a title or id: look them up on arXiv
            added = [p for p in store.get_papers(sorted(set(store.paper_ids()) - before)).values()
                     if needs_enrichment(p)]
            if added:
                _enrich(args, added, store, embedder)
    _print_report(report, quiet=args.quiet)
    if report.stale_note and not args.quiet:
        print(report.stale_note, file=sys.stderr)
    return EXIT_REJECTED if report.rejected else EXIT_OK


def _rechunk(args: argparse.Namespace) -> int:
    from ingest.pipeline import rechunk
    from ingest.store import Store
    from models.embedder import Embedder

    with _writer(args):
        store = Store.open_existing(_store_config(args))  # the model that built it: re-embedding must match
        embedder = Embedder(EmbedderConfig(model=store.meta.model, device=args.device))
        with _Progress(enabled=not args.quiet) as progress:
            report = rechunk(store, embedder, IngestOptions(batch_size=args.batch_size), progress=progress)
    if not args.quiet:
        print(f"re-chunked {report.updated} papers ({store.meta.chunker}) — "
              f"index: {report.papers_in_index} papers, {report.chunks_in_index} chunks")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from ingest.check import check, repair
    from ingest.store import Store
    from models.embedder import Embedder

    store = Store.open_existing(_store_config(args))  # before the lock: a missing index is not created
    with _writer(args) if args.repair else nullcontext():
        embedder = Embedder(EmbedderConfig(model=store.meta.model, device=args.device))
        found = check(store, embedder)
        if args.repair and not found.ok:
            fixed = repair(store, embedder, found)
            print(printable(fixed.line(), newlines=False))
            found = fixed.after
    for line in found.lines():
        print(printable(line, newlines=False))
    print("index is whole" if found.ok else "index needs repair: python -m ingest --check --repair")
    return EXIT_OK if found.ok else EXIT_REJECTED


def _print_report(report: IngestReport, quiet: bool) -> None:
    for rejection in report.rejected:  # file names and reasons quote the input: never raw control codes
        print(printable(str(rejection), newlines=False), file=sys.stderr)
    if not quiet:
        print(report.summary())


class _Progress:
    """A tqdm bar on a terminal (done/total, rate, time left), a line every few seconds otherwise, nothing when
    disabled. ``total``: records the sources hold (None: unknown, the bar then counts without a total)."""

    def __init__(self, enabled: bool, total: int | None = None):
        from ingest.progress import ProgressMeter

        self.enabled, self.bar, self.last_line = enabled, None, 0.0
        self.meter = ProgressMeter(total)
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc="ingest", total=total, unit=" papers", file=sys.stderr, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
                            if total else None)

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, progress: IngestProgress) -> None:
        done = progress.papers_parsed + progress.rejected  # records read: the pre-count counts both
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(chunks_embedded=progress.chunks_embedded, rejected=progress.rejected, refresh=False)
        elif self.enabled and time.monotonic() - self.last_line >= _LOG_EVERY_S:
            self.last_line = time.monotonic()
            print(f"ingest: {self.meter.line(done)}, {progress.chunks_embedded} chunks embedded, "
                  f"{progress.rejected} rejected", file=sys.stderr, flush=True)


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecations are not the user's business
    sys.exit(main())
