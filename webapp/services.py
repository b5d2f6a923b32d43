"""What the web app builds once and shares between sessions: index, answerers, ingest, library, facets.

No gradio here, so this is testable and reusable. The index and the embedder open before the
page is served; the sample papers (on first start) and the models load in the background
(:mod:`webapp.startup`). A model that cannot be fetched or loaded is left out of the model
choice and said once. Adding or removing papers writes through the same store, then
refreshes the keyword index under a write lock so no search reads a half-updated index.

>>> make_filters("2021", "", "any") == Filters(year_min=2021, year_max=None, category=None, author=None, paper_ids=None)
True
>>> make_filters(None, None, None) is None
True
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import islice

from chat.answer import AnswerConfig, Answerer
from chat.render import example_questions, model_label
from chat.retrieve import Filters
from chat.sentences import SentenceVectors, split_sentences
from chat.setup import open_answerer
from ingest.enrich import EnrichReport, enrich, needs_enrichment
from ingest.library import Library, Removal, read_library, remove_papers, remove_source
from ingest.pipeline import IngestOptions, IngestProgress, IngestReport, ingest
from ingest.progress import ProgressMeter, estimate_total
from ingest.sources import ReadOptions
from ingest.store import StoreConfig
from models.errors import UnavailableError
from models.llm import LLMConfig, LocalLLM
from webapp.locks import ReadWriteLock
from webapp.startup import Startup

EXTRACTIVE = "extractive"
EXTRACTIVE_LABEL = "Extractive (quotes the abstracts, no model)"
ANY_CATEGORY = "any"
_FACET_SAMPLE = 20_000  # papers read to list categories and years: enough to show the common ones


@dataclass(frozen=True)
class Facets:
    """What the filter controls offer."""

    papers: int
    year_min: int | None
    year_max: int | None
    categories: tuple[str, ...]


def make_filters(year_min, year_max, category: str | None) -> Filters | None:
    """Filters from the UI controls (year boxes are text: empty means any); None when nothing restricts.
    ValueError for a year that is not a number."""
    years = []
    for label, value in (("From year", year_min), ("To year", year_max)):
        value = str(value if value is not None else "").strip()
        if value and not value.lstrip("-").isdigit():
            raise ValueError(f"{label} must be a year such as 2023, not {value!r}")
        years.append(int(value) if value else None)
    cat = category.strip() if category and category.strip() and category != ANY_CATEGORY else None
    if years == [None, None] and cat is None:
        return None
    return Filters(year_min=years[0], year_max=years[1], category=cat, author=None, paper_ids=None)


class Services:
    """The shared components. Build with :meth:`start`."""

    def __init__(self, settings, log: Callable[[str], None]):
        self.settings, self.log = settings, log
        self.extractive = open_answerer(StoreConfig(path=settings.index), device=settings.device)  # no model
        self.retriever = self.extractive.retriever
        self.store, self.embedder = self.retriever.store, self.retriever.embedder
        self.lock = ReadWriteLock()
        self._models: dict[str, Answerer] = {}  # spec -> answerer, for the models that loaded
        self._library: tuple[int, Library] | None = None
        self._vectors = SentenceVectors(self.embedder)
        read = ReadOptions(arxiv_base_url=settings.arxiv_url) if settings.arxiv_url else ReadOptions()
        self.ingest_options = IngestOptions(read=read, batch_size=32)  # small batches: frequent progress
        empty = self.store.stats().papers == 0
        steps = [("indexing", Services._index_samples)] if empty else []
        steps += [("loading", Services._load_models)] + ([("enriching", Services._enrich_new)] if empty else [])
        self.startup = Startup([(phase, lambda s, f=f: f(self, s)) for phase, f in steps], log)
        self.startup.update(index_ready=not empty)
        self._new_ids: list[str] = []

    @classmethod
    def start(cls, settings, log: Callable[[str], None] = print) -> "Services":
        """Open the index, then index the samples and load the models in the background."""
        services = cls(settings, log)
        services.startup.start()
        return services

    # -- first start -------------------------------------------------------------------------
    def _index_samples(self, startup: Startup) -> None:
        samples = self.settings.samples
        self.log(f"PaperChat: the index at {self.store.location} is empty; indexing the sample papers in {samples}")
        def update(**status) -> None:  # the page polls the status; the console gets a line per batch
            startup.update(**status)
            self.log(f"  indexing: {status['line']}")
        report = self._ingest([samples], update, "records")
        self.log(f"PaperChat: {report.summary()} ({report.seconds:.0f}s)")
        self._new_ids = [p.paper_id for p in self.store.iter_papers()]
        startup.update(index_ready=True)
        startup.note(f"First start: indexed {report.papers_in_index} sample papers from {samples} in "
                     f"{report.seconds:.0f}s. Add your own under \u201cAdd papers\u201d.")

    def _load_models(self, startup: Startup) -> None:
        for spec in self.settings.models:
            startup.update(line=f"loading {model_label(spec)}")
            self.log(f"PaperChat: loading model {spec} (downloaded on first use)")
            try:
                llm = LocalLLM(replace(LLMConfig(), model=spec, n_gpu_layers=self.settings.gpu_layers),
                               progress=self._download_progress(startup, spec))
            except (UnavailableError, ValueError) as exc:
                startup.note(f"{exc} Answering extractively (no language model).")
                continue
            self._models[spec] = Answerer(self.retriever, llm, AnswerConfig(), embedder=self.embedder)
            self.log(f"PaperChat: model {model_label(spec)} ready")

    def _download_progress(self, startup: Startup, spec: str):
        shown = [-1]

        def report(done: int, total: int | None) -> None:
            size = f"{done >> 20}/{total >> 20} MiB" if total else f"{done >> 20} MiB"
            startup.update(done=done, total=total, line=f"downloading {model_label(spec)}: {size}")
            if total and done * 10 // total > shown[0]:  # the console: every tenth
                shown[0] = done * 10 // total
                self.log(f"  model download: {size}")
        return report

    def _enrich_new(self, startup: Startup) -> None:
        papers = [p for p in self.store.get_papers(self._new_ids).values() if needs_enrichment(p)]
        report = self._enrich(papers, lambda done, total: startup.update(
            done=done, total=total, line=f"looking up titles on arXiv: {done}/{total}"))
        self.log(f"PaperChat: {report.summary()}")

    # -- answering ---------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.startup.status.ready

    def model_choices(self) -> list[tuple[str, str]]:
        """(readable name, value) of every model that loaded, then the extractive choice."""
        return [(model_label(spec), spec) for spec in self.settings.models if spec in self._models] + [
            (EXTRACTIVE_LABEL, EXTRACTIVE)]

    def answerer(self, choice: str | None) -> Answerer:
        """The answerer for a model choice; the first loaded model when None; extractive when it did not load."""
        if choice is None:
            choice = next(iter(self._models), EXTRACTIVE)
        return self._models.get(choice, self.extractive)

    def search(self, query: str, k: int, filters: Filters | None) -> tuple[list, list[str]]:
        """Hits, and each hit's sentence closest to the query (its best-matching passage)."""
        with self.lock.read():
            hits = self.retriever.search(query, k=k, filters=filters)
        best = []
        for hit in hits:
            sentences = split_sentences(hit.paper.abstract)[:40] or [hit.paper.abstract]
            scores = self._vectors(sentences) @ self._vectors([query])[0]
            best.append(sentences[int(scores.argmax())])
        return hits, best

    # -- adding and removing papers ----------------------------------------------------------
    def add_papers(self, sources: Sequence[str], progress: Callable[..., None] | None = None,
                   lookup: bool = True) -> tuple[IngestReport, EnrichReport | None]:
        """Ingest ``sources``; then look up the new papers without a title or id on arXiv (``lookup``)."""
        before = set(self.store.paper_ids())
        report = self._ingest(list(sources), progress or (lambda **_: None), "records")
        if not lookup:
            return report, None
        added = [p for p in self.store.get_papers(sorted(set(self.store.paper_ids()) - before)).values()
                 if needs_enrichment(p)]
        return report, self._enrich(added) if added else None

    def _ingest(self, sources: list[str], update: Callable[..., None], unit: str) -> IngestReport:
        total = estimate_total(sources, self.ingest_options.read).count
        meter = ProgressMeter(total, unit=unit)
        update(done=0, total=total, line=meter.line(0))

        def progress(p: IngestProgress) -> None:
            done = p.papers_parsed + p.rejected
            update(done=min(done, total or done), total=total, line=meter.line(done))
        report = ingest(sources, self.store, self.embedder, self.ingest_options, progress=progress)
        self._refresh()
        return report

    def _enrich(self, papers, progress=None) -> EnrichReport:
        report = enrich(self.store, self.embedder, papers, self.ingest_options.read, progress=progress)
        if report.resolved:
            self._refresh()
        return report

    def _refresh(self) -> None:
        with self.lock.write():  # sync mutates the postings: no search may run meanwhile
            self.retriever.refresh()
        self._library = None

    def library(self) -> Library:
        """Every indexed paper (cached until the index changes)."""
        generation = self.store.reload_meta().generation
        if self._library is None or self._library[0] != generation:
            self._library = (generation, read_library(self.store))
        return self._library[1]

    def remove(self, paper_id: str = "", source: str = "") -> Removal:
        removal = remove_papers(self.store, [paper_id]) if paper_id else remove_source(self.store, source)
        self._refresh()
        return removal

    # -- what the controls offer -------------------------------------------------------------
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

