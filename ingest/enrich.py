"""Fill in what a source left out (title, authors, date, categories, link) from the arXiv API.

A paper with an arXiv id but no title is looked up by its id. A paper with neither is
looked up by its text: a search for a few of its most distinctive words, and a result
is accepted only when its abstract is the same text as ours — at least ``min_match`` of
our abstract's character 10-grams (letters and digits only, so glued words and
punctuation do not matter) occur in it, clearly more than in the runner-up. Our
abstract, and so the paper's fingerprint, is kept; the paper takes its arXiv id (the
old id is removed, or merged into a paper already holding that id).

Offline, :func:`enrich` says so at once (one connection attempt, no retries) and
changes nothing.

>>> round(text_match("We present QLoRA, an efficient approach.", "We present QLoRA , an efficient  approach"), 2)
1.0
>>> text_match("We present QLoRA, an efficient approach.", "Attention is all you need, they said.") < 0.1
True
>>> search_query(["We present QLoRA, an efficient finetuning approach that reduces memory usage."])
'(abs:QLoRA AND abs:efficient AND abs:finetuning AND abs:reduces AND abs:memory)'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ingest.chunk import ChunkerConfig, chunk_paper
from ingest.records import Paper
from ingest.remote import arxiv_reachable, lookup_ids, search_papers
from ingest.source_types import ReadOptions
from ingest.store import Store
from models.errors import UnavailableError

_SHINGLE = 10
_COMMON = set("""
about above after again against among because been before being below between both could does doing during each
from further have having here into itself just more most other over same should some such than that their theirs
them then there these they this those through under until very what when where which while with would your model
models paper propose proposed present show shows using based large language method methods approach results
""".split())


@dataclass(frozen=True)
class EnrichConfig:
    min_match: float = 0.8  # share of our abstract's 10-grams found in the arXiv abstract
    margin: float = 0.3  # the best result must beat the runner-up by this much
    batch: int = 5  # papers looked up by text per request (their queries OR-ed)
    results_per_paper: int = 5
    query_words: int = 5


@dataclass
class EnrichReport:
    looked_up: int = 0
    resolved: list[tuple[str, Paper]] = field(default_factory=list)  # (old id, enriched paper)
    unresolved: list[str] = field(default_factory=list)
    offline: str = ""  # why arXiv could not be asked; empty when it was

    def summary(self) -> str:
        if self.offline:
            return (f"enrich: {self.offline}; {self.looked_up} papers without a title or arXiv id were not looked up "
                    "(run python -m ingest --enrich when online)")
        return (f"enrich: {len(self.resolved)} of {self.looked_up} papers without a title or arXiv id found on arXiv"
                f"{'' if not self.unresolved else f'; {len(self.unresolved)} not found (they keep derived names)'}")


def needs_enrichment(paper: Paper) -> bool:
    return not paper.arxiv_id or not paper.title


def enrich(store: Store, embedder, papers: Sequence[Paper] | None = None, options: ReadOptions = ReadOptions(),
           config: EnrichConfig = EnrichConfig(), progress: Callable[[int, int], None] | None = None) -> EnrichReport:
    """Look up ``papers`` (default: every paper of ``store`` without a title or id) and store what is found.

    ``embedder`` (or a function returning it, called only when something is found) re-embeds the papers
    whose title changed: the title is part of every chunk."""
    wanted = [p for p in (papers if papers is not None else store.iter_papers()) if needs_enrichment(p)]
    report = EnrichReport(looked_up=len(wanted))
    if not wanted:
        return report
    report.offline = arxiv_reachable(options)
    if report.offline:
        return report
    found: dict[str, Paper] = {}
    try:
        with_id = [p for p in wanted if p.arxiv_id]
        for start in range(0, len(with_id), options.page_size):
            batch = with_id[start:start + options.page_size]
            by_id = {r.arxiv_id: r for r in lookup_ids([p.arxiv_id for p in batch], options)}
            found.update({p.paper_id: by_id[p.arxiv_id] for p in batch if p.arxiv_id in by_id})
            _tick(progress, start + len(batch), len(wanted))
        by_text = [p for p in wanted if not p.arxiv_id]
        for start in range(0, len(by_text), config.batch):
            batch = by_text[start:start + config.batch]
            found.update(_match_batch(batch, options, config))
            _tick(progress, len(with_id) + start + len(batch), len(wanted))
    except UnavailableError as exc:  # the connection dropped midway: keep what was found
        report.offline = str(exc)
    _store(store, embedder, wanted, found, report)
    return report


def _tick(progress, done: int, total: int) -> None:
    if progress:
        progress(done, total)


def _match_batch(papers: list[Paper], options: ReadOptions, config: EnrichConfig) -> dict[str, Paper]:
    query = " OR ".join(search_query([p.abstract], config.query_words) for p in papers)
    results = search_papers(query, config.results_per_paper * len(papers), options)
    matched = {}
    for paper in papers:
        scored = sorted(((text_match(paper.abstract, r.abstract), r) for r in results), key=lambda x: -x[0])
        best, runner_up = (scored + [(0.0, None)] * 2)[:2]
        if best[1] is not None and best[0] >= config.min_match and best[0] - runner_up[0] >= config.margin:
            matched[paper.paper_id] = best[1]
    return matched


def _store(store: Store, embedder, wanted: list[Paper], found: dict[str, Paper], report: EnrichReport) -> None:
    """Write each found paper under its arXiv id with our abstract, merged with a stored paper of that id."""
    existing = store.get_papers([f.arxiv_id for f in found.values()])
    updated, remove = {}, []
    for paper in wanted:
        remote = found.get(paper.paper_id)
        if remote is None:
            report.unresolved.append(paper.paper_id)
            continue
        base = existing.get(remote.arxiv_id, paper)  # a paper already stored under that id stays the record
        filled = replace(base, paper_id=remote.arxiv_id, arxiv_id=remote.arxiv_id,
                         version=base.version or remote.version,
                         title=base.title or paper.title or remote.title, authors=base.authors or remote.authors,
                         date=base.date or remote.date, categories=base.categories or remote.categories,
                         url=remote.url, sources=tuple(dict.fromkeys(base.sources + paper.sources)))
        updated[filled.paper_id] = filled
        if paper.paper_id != filled.paper_id:
            remove.append(paper.paper_id)
        report.resolved.append((paper.paper_id, filled))
    if updated:
        papers = list(updated.values())
        embedder = embedder if hasattr(embedder, "embed") else embedder()
        chunks = [c for p in papers for c in chunk_paper(p, ChunkerConfig(), embedder.max_tokens)]
        store.write(papers, chunks, embedder.embed([c.text for c in chunks]), remove=remove)


def text_match(ours: str, theirs: str) -> float:
    """Share of ``ours``' character 10-grams (lower-case letters and digits only) that occur in ``theirs``."""
    a, b = _shingles(ours), _shingles(theirs)
    return len(a & b) / len(a) if a else 0.0


def _shingles(text: str) -> set[str]:
    squashed = re.sub(r"[^a-z0-9]", "", text.lower())
    return {squashed[i:i + _SHINGLE] for i in range(max(len(squashed) - _SHINGLE + 1, 0))}


def search_query(abstracts: Sequence[str], words: int = 5) -> str:
    """An arXiv query for each abstract (its distinctive words, ANDed), the abstracts' queries ORed."""
    parts = []
    for abstract in abstracts:
        opening = re.findall(r"[A-Za-z][A-Za-z0-9\-]+", " ".join(abstract.split()[:60]))
        words_seen = [w for w in dict.fromkeys(opening) if w.lower() not in _COMMON and "-" not in w]
        coined = [w for w in words_seen
                  if len(w) >= 3 and (any(c.isupper() for c in w[1:]) or any(c.isdigit() for c in w))]
        candidates = coined + [w for w in words_seen if len(w) >= 6 and w not in coined]
        chosen = candidates[:words]
        parts.append("(" + " AND ".join(f"abs:{w}" for w in chosen) + ")")
    return " OR ".join(parts)
