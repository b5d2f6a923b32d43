"""What the web app builds once and shares between sessions: index, answerers, ingest, facets.

No gradio here, so this is testable and reusable. Answerers are opened lazily, one per
model choice ("extractive" needs no model); a model that cannot be fetched or loaded
falls back to extractive answers with a notice. Adding papers runs the same
:func:`ingest.pipeline.ingest` as the CLI, then refreshes every retriever's keyword
index under a write lock so no search reads a half-updated index.

>>> make_filters(2021, None, "any") == Filters(year_min=2021, year_max=None, category=None, author=None, paper_ids=None)
True
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice

from chat.answer import Answerer
from chat.render import example_questions
from chat.retrieve import Filters
from chat.setup import open_answerer
from ingest.pipeline import IngestOptions, IngestProgress, IngestReport, ingest
from ingest.sources import ReadOptions
from ingest.store import StoreConfig

EXTRACTIVE = "extractive (no model)"
ANY_CATEGORY = "any"
_FACET_SAMPLE = 20_000  # papers read to list categories and years: enough to show the common ones


@dataclass(frozen=True)
class Facets:
    """What the filter controls offer."""

    papers: int
    year_min: int | None
    year_max: int | None
    categories: tuple[str, ...]


def make_filters(year_min: float | None, year_max: float | None, category: str | None) -> Filters | None:
    """Filters from the UI controls; None when nothing restricts the search."""
    ymin, ymax = (int(y) if y not in (None, "") and int(y) > 0 else None for y in (year_min, year_max))  # 0: empty box
    cat = category if category and category != ANY_CATEGORY else None
    if ymin is None and ymax is None and cat is None:
        return None
    return Filters(year_min=ymin, year_max=ymax, category=cat, author=None, paper_ids=None)


class _ReadWriteLock:
    """Many readers (searches, answers) or one writer (keyword refresh); a waiting writer blocks new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and not self._waiting_writers)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            self._cond.wait_for(lambda: not self._writer and not self._readers)
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class Services:
    """The shared components. Build with :meth:`start`."""

    def __init__(self, settings, first, log: Callable[[str], None]):
        self.settings, self.log = settings, log
        # One retriever (and so one Store object and one keyword index) for every answerer: the
        # keyword index follows the generation of the Store object that ingest writes through.
        self.retriever = first.retriever
        self.store, self.embedder = self.retriever.store, self.retriever.embedder
        self.notices: list[str] = []
        self.lock = _ReadWriteLock()
        self.choices: tuple[str, ...] = (*settings.models, EXTRACTIVE)
        self._answerers = {self.choices[0]: first}
        self._open_lock = threading.Lock()
        read = ReadOptions(arxiv_base_url=settings.arxiv_url) if settings.arxiv_url else ReadOptions()
        self.ingest_options = IngestOptions(read=read, batch_size=32)  # small batches: frequent progress

    @classmethod
    def start(cls, settings, log: Callable[[str], None] = print) -> "Services":
        """Open the index and the first answerer (on a Space: download its model), then fill an empty index."""
        choice = settings.models[0] if settings.models else EXTRACTIVE
        services = cls(settings, _open(StoreConfig(path=settings.index), choice, log), log)
        services._note(services._answerers[choice])
        if services.store.stats().papers == 0:
            services.ingest_samples()
        return services

    def ingest_samples(self) -> None:
        samples = self.settings.samples
        self.log(f"PaperChat: the index at {self.store.location} is empty; indexing the sample papers in {samples}")
        report = ingest([samples], self.store, self.embedder, self.ingest_options, progress=self._log_progress)
        self.retriever.refresh()
        self.log(f"PaperChat: {report.summary()} ({report.seconds:.0f}s)")
        self.notices.append(f"First start: indexed {report.papers_in_index} sample papers from {samples} "
                            f"in {report.seconds:.0f}s. Add your own under \u201cAdd papers\u201d.")

    def _log_progress(self, p: IngestProgress) -> None:
        self.log(f"  indexing: {p.papers_parsed} papers read, {p.papers_written} written, "
                 f"{p.chunks_embedded} chunks embedded, {p.rejected} rejected")

    def answerer(self, choice: str | None):
        """The answerer for a model choice (the first when None), opened on first use."""
        choice = choice if choice in self.choices else self.choices[0]
        with self._open_lock:
            if choice not in self._answerers:
                opened = _open(self.store.config, choice, self.log, self.embedder.config)
                self._answerers[choice] = Answerer(self.retriever, opened.llm, opened.config, embedder=self.embedder,
                                                   notes=opened.notes)
                self._note(opened)
            return self._answerers[choice]

    def _note(self, answerer) -> None:
        """Say why an answerer has no model (download failed, file missing): in the UI and the console."""
        for note in answerer.notes:
            self.notices.append(note)
            self.log(f"PaperChat: {note}")

    def search(self, query: str, k: int, filters: Filters | None):
        with self.lock.read():
            return self.retriever.search(query, k=k, filters=filters)

    def add_papers(self, sources: Sequence[str], progress: Callable[[IngestProgress], None] | None) -> IngestReport:
        """Ingest ``sources`` (files, directories, ``arxiv:`` specs), then refresh the keyword index."""
        report = ingest(list(sources), self.store, self.embedder, self.ingest_options, progress=progress)
        with self.lock.write():  # sync mutates the postings: no search may run meanwhile
            self.retriever.refresh()
        return report

    def facets(self) -> Facets:
        years: list[int] = []
        categories: Counter[str] = Counter()
        for paper in islice(self.store.iter_papers(), _FACET_SAMPLE):
            if paper.year is not None:
                years.append(paper.year)
            categories.update(paper.categories)
        top = tuple(sorted(c for c, _ in categories.most_common(60)))
        return Facets(self.store.stats().papers, min(years, default=None), max(years, default=None), top)

    def examples(self, n: int = 4, seed: int | None = None) -> list[str]:
        """Example questions from the titles of ``n`` randomly chosen indexed papers."""
        papers = [p for p in islice(self.store.iter_papers(), 2000) if p.title]
        random.Random(seed).shuffle(papers)
        return example_questions(papers, n)


def _open(store_config: StoreConfig, choice: str, log: Callable[[str], None], embedder_config=None):
    spec = None if choice == EXTRACTIVE else choice
    if spec:
        log(f"PaperChat: loading model {spec} (downloaded on first use)")
    shown = [-1]

    def download(done: int, total: int | None) -> None:
        step = done * 10 // total if total else -1
        if step > shown[0]:
            shown[0] = step
            log(f"  model download: {done >> 20} / {total >> 20} MiB")
    # A model that cannot be had gives an extractive answerer whose notes say why.
    return open_answerer(store_config, embedder_config, spec, progress=download)
