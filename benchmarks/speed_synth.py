"""Synthetic large indexes for retrieval timing, without embedding every paper.

A synthetic paper is a real SciFact title and real SciFact sentences, as many as make an
abstract of arXiv's length (about 1,070 characters on average, clipped to arXiv's 1,920); it
is cut by the real chunker (:func:`ingest.chunk.chunk_paper`): 5.0 chunks per paper, as the
bundled real AI abstracts give (4.9; SciFact's own abstracts 6.7). A chunk's
vector is the normalised mean of the cached embeddings of the title and the sentences it holds,
so the geometry stays realistic (similar text, similar vector) while a million papers cost one
embedding pass over ~45k sentences. Years follow arXiv's yearly submissions (2007-2025),
categories its mix (a primary and 0-2 cross-lists; cs.CL ≈ 7% of papers), authors 1-12 per
paper from 30,000 made-up names. Batch ``start`` draws from its own seed, so a build resumes
anywhere and any batch can be made again; each batch's composition (which title and sentences
each chunk holds) is saved, so exact vectors can be recomputed for recall measurements.

>>> import numpy as np
>>> pool = SentencePool(["Mice were treated.", "Cats purr at night."], ["T1"], np.eye(3, dtype=np.float32)[:2],
...                     np.eye(3, dtype=np.float32)[2:])
>>> batch = synth_batch(pool, 0, 3)
>>> len(batch.papers), batch.chunks[0].chunk_id, round(float(np.linalg.norm(batch.vectors[0])), 3)
(3, 'syn-0000000#0', 1.0)
>>> bool(np.allclose(chunk_vectors(pool, batch.composition), batch.vectors))
True
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmarks.beir import iter_corpus
from ingest.chunk import chunk_paper, split_sentences
from ingest.records import Paper
from ingest.store import Chunk, Store
from models.embedder import Embedder

CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache")
WRITE_BATCH = 2000  # papers per Store.write (measured: see RESULTS.md "Speed", write batches)

# arXiv new submissions per year, thousands (arXiv's statistics, rounded): years are drawn in proportion.
YEARS = {2007: 56, 2008: 59, 2009: 64, 2010: 70, 2011: 77, 2012: 84, 2013: 93, 2014: 98, 2015: 106, 2016: 114,
         2017: 124, 2018: 141, 2019: 156, 2020: 179, 2021: 182, 2022: 186, 2023: 208, 2024: 244, 2025: 280}
# Primary categories, per mille (approximating arXiv's recent mix); the rest spreads over "other" archives.
CATEGORIES = {"cs.LG": 90, "cs.CV": 80, "cs.CL": 55, "cs.AI": 35, "cs.RO": 20, "cs.CR": 18, "cs.IR": 10,
              "cs.SE": 12, "cs.DS": 8, "cs.NI": 8, "cs.HC": 10, "cs.DC": 10, "stat.ML": 15, "stat.ME": 10,
              "eess.SP": 15, "eess.IV": 10, "eess.SY": 14, "math.OC": 15, "math.PR": 15, "math.AP": 15, "math.CO": 15,
              "math.NT": 10, "math.AG": 10, "quant-ph": 50, "hep-th": 30, "hep-ph": 35, "gr-qc": 18,
              "astro-ph.GA": 20, "astro-ph.CO": 15, "astro-ph.SR": 15, "astro-ph.HE": 15, "cond-mat.mtrl-sci": 30,
              "cond-mat.str-el": 15, "cond-mat.mes-hall": 20, "cond-mat.stat-mech": 15, "physics.optics": 20,
              "physics.flu-dyn": 12, "q-bio.NC": 8, "q-bio.QM": 8, "q-fin.ST": 5, "econ.EM": 5, "nucl-th": 10}
_SYLLABLES = ("an ba chen da el fa gi ha in jo ka li mo na or pe qi ra sa ta ul va wei xi ya zu ko ri su mi "
              "lo ne de ro ma ti lu se").split()


@dataclass(frozen=True)
class SentencePool:
    sentences: list[str]
    titles: list[str]
    vectors: np.ndarray  # one unit row per sentence
    title_vectors: np.ndarray  # one unit row per title


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    median_chars: float = 950.0  # abstract length: log-normal around this median (mean ~1,070 characters) ...
    sigma: float = 0.3
    min_chars: int = 300
    max_chars: int = 1920  # ... clipped to arXiv's limit


@dataclass(frozen=True)
class Composition:
    """Which paper, title and sentences each chunk of a batch holds: chunk i belongs to paper
    ``paper[i]`` of the batch and holds ``sentences[indptr[i]:indptr[i + 1]]`` (indexes into the pool)."""

    paper: np.ndarray
    title: np.ndarray
    indptr: np.ndarray
    sentences: np.ndarray


@dataclass(frozen=True)
class SynthBatch:
    papers: list[Paper]
    chunks: list[Chunk]
    vectors: np.ndarray
    composition: Composition


def sentence_pool(directory: str, embedder: Embedder, abstracts: int, cache_dir: str = CACHE) -> SentencePool:
    """Sentences (21-300 characters) and titles of the first ``abstracts`` abstracts, with cached embeddings."""
    rows = list(iter_corpus(directory))[:abstracts]
    sentences = [s for r in rows for s in split_sentences(r["text"]) if 20 < len(s) <= 300]
    titles = [r["title"] for r in rows if r.get("title") and len(r["title"]) <= 200]
    key = hashlib.sha1(f"{embedder.name}|{len(sentences)}|{sentences[0]}|{sentences[-1]}|{len(titles)}".encode())
    path = os.path.join(cache_dir, f"pool-{key.hexdigest()[:16]}.npz")
    if not os.path.exists(path):
        vectors, title_vectors = embedder.embed(sentences), embedder.embed(titles)
        os.makedirs(cache_dir, exist_ok=True)
        np.savez(path + ".tmp.npz", vectors=vectors, titles=title_vectors)
        os.replace(path + ".tmp.npz", path)
    with np.load(path) as saved:
        return SentencePool(sentences, titles, saved["vectors"], saved["titles"])


def synth_batch(pool: SentencePool, start: int, n: int, config: SynthConfig = SynthConfig()) -> SynthBatch:
    """Papers ``start``..``start+n-1`` with their chunks, chunk vectors and composition (same every time)."""
    rng = np.random.default_rng([config.seed, start])
    names = _names(config.seed)
    papers, chunks, paper_of, title_of, indptr, members = [], [], [], [], [0], []
    for i in range(n):
        paper, picks, title = _paper(pool, rng, start + i, names, config)
        papers.append(paper)
        for chunk in chunk_paper(paper):
            chunks.append(chunk)
            paper_of.append(i)
            title_of.append(title)
            # a sentence the chunker cut at word boundaries shows only in part: match either end
            members += [j for j in picks if pool.sentences[j][:40] in chunk.text or pool.sentences[j][-40:] in chunk.text]
            indptr.append(len(members))
    composition = Composition(np.array(paper_of, np.int32), np.array(title_of, np.int32), np.array(indptr, np.int64),
                              np.array(members, np.int32))
    return SynthBatch(papers, chunks, chunk_vectors(pool, composition), composition)


def chunk_vectors(pool: SentencePool, c: Composition) -> np.ndarray:
    """Each chunk's vector: the normalised mean of its title's and its sentences' embeddings."""
    sums = pool.title_vectors[c.title].astype(np.float32)
    filled = np.flatnonzero(np.diff(c.indptr) > 0)
    if len(filled):  # reduceat sums each chunk's run of sentence rows (only chunks that have a run)
        sums[filled] += np.add.reduceat(pool.vectors[c.sentences], c.indptr[filled], axis=0)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)


def _paper(pool: SentencePool, rng: np.random.Generator, number: int, names: list[str], config: SynthConfig):
    target = float(np.clip(rng.lognormal(np.log(config.median_chars), config.sigma), config.min_chars,
                           config.max_chars))
    picks, length = [], -1
    while length < target or not picks:
        j = int(rng.integers(len(pool.sentences)))
        if length + 1 + len(pool.sentences[j]) > config.max_chars and picks:
            break
        picks.append(j)
        length += 1 + len(pool.sentences[j])
    title = int(rng.integers(len(pool.titles)))
    year = int(rng.choice(list(YEARS), p=_share(YEARS)))
    primary = str(rng.choice(list(CATEGORIES), p=_share(CATEGORIES)))
    cross = [str(c) for c in rng.choice(list(CATEGORIES), size=int(rng.choice(3, p=(0.55, 0.3, 0.15))))]
    authors = tuple(names[int(k)] for k in rng.integers(len(names), size=int(min(1 + rng.poisson(3.2), 12))))
    paper = Paper(paper_id=f"syn-{number:07d}", title=pool.titles[title], abstract=" ".join(pool.sentences[j] for j in picks),
                  authors=authors, date=f"{year}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
                  categories=tuple(dict.fromkeys([primary, *cross])), sources=("synthetic",))
    return paper, picks, title


def _share(weights: dict) -> np.ndarray:
    w = np.array(list(weights.values()), dtype=np.float64)
    return w / w.sum()


def _names(seed: int, n: int = 30_000) -> list[str]:
    rng = np.random.default_rng([seed, 7])

    def word(parts: int) -> str:
        return "".join(_SYLLABLES[int(k)] for k in rng.integers(len(_SYLLABLES), size=parts)).capitalize()

    return [f"{word(2)} {word(int(rng.integers(2, 4)))}" for _ in range(n)]


# -- building a cached index ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildLog:
    """What building an index cost, kept in ``<index>/speed_build.json`` across resumed runs."""

    papers: int
    chunks: int
    write_s: float  # Store.write calls only (the ingest's write stage)
    synth_s: float  # composing papers and cutting chunks (not part of an ingest's cost here)
    loads: list  # 1-minute load averages sampled during the build
    pool: dict = field(default_factory=dict)  # how the sentence pool was made: {"abstracts", "cache"}


def read_build_log(index: str) -> BuildLog:
    try:
        with open(os.path.join(index, "speed_build.json"), encoding="utf-8") as fh:
            return BuildLog(**json.load(fh))
    except (OSError, ValueError, TypeError):
        return BuildLog(0, 0, 0.0, 0.0, [])


def open_pool(index: str, embedder: Embedder, directory: str) -> SentencePool:
    """The sentence pool an index was built from (as its build log records)."""
    made = read_build_log(index).pool
    return sentence_pool(directory, embedder, made["abstracts"], made["cache"])


def grow_index(store: Store, pool: SentencePool, target: int, config: SynthConfig = SynthConfig(),
               batch: int = WRITE_BATCH, log: Callable[[str], None] | None = None,
               made: dict | None = None) -> BuildLog:
    """Add synthetic papers until the index holds ``target``; resumable (batch by batch) after a kill."""
    index = store.config.path
    done = read_build_log(index)
    stored = store.stats().papers
    # every batch the log records was written before the log was saved; a later, half-written one is written again
    have = done.papers if stored >= done.papers else (stored // batch) * batch
    chunks = done.chunks if have == done.papers else sum(len(_load_composition(p).title)
                                                         for p in _composition_files(index, have))
    papers, write_s, synth_s, loads = have, done.write_s, done.synth_s, list(done.loads)
    made = made or done.pool
    started = time.perf_counter()
    for start in range(have, target, batch):
        t = time.perf_counter()
        part = synth_batch(pool, start, min(batch, target - start), config)
        t_write = time.perf_counter()
        store.write(part.papers, part.chunks, part.vectors)
        write_s += time.perf_counter() - t_write
        synth_s += t_write - t
        _save_composition(index, start, part.composition)
        papers, chunks = start + len(part.papers), chunks + len(part.chunks)
        loads.append(round(os.getloadavg()[0], 2))
        _save_log(index, BuildLog(papers, chunks, write_s, synth_s, loads[-2000:], made))
        if log:
            rate = (papers - have) / (time.perf_counter() - started)
            log(f"{papers:,}/{target:,} papers, {chunks:,} chunks ({chunks / papers:.2f}/paper); write "
                f"{write_s:,.0f} s; {rate:.0f} papers/s now, ~{(target - papers) / max(rate, 1e-9) / 60:.0f} min "
                f"left; load {loads[-1]}")
    return read_build_log(index)


def exact_top(pool: SentencePool, index: str, queries: np.ndarray, k: int = 10) -> list[list[str]]:
    """The ids of the ``k`` chunks nearest each query by exact cosine over every chunk of a built index,
    their vectors recomputed batch by batch from the saved compositions (the index is never read)."""
    best_scores = np.full((len(queries), k), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), k), dtype=object)
    queries = np.asarray(queries, np.float32)
    for path in _composition_files(index, None):
        start = int(os.path.basename(path).split(".")[0])
        c = _load_composition(path)
        scores = queries @ chunk_vectors(pool, c).T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        ids = np.array([f"syn-{start + int(p):07d}#{q}" for p, q in zip(c.paper, saved_positions(c.paper))],
                       dtype=object)
        merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        merged_ids = np.concatenate([best_ids, ids[top]], axis=1)
        keep = np.argsort(-merged_scores, axis=1, kind="stable")[:, :k]
        best_scores, best_ids = np.take_along_axis(merged_scores, keep, 1), np.take_along_axis(merged_ids, keep, 1)
    return [list(row) for row in best_ids]


def saved_positions(papers: np.ndarray) -> np.ndarray:
    """Chunk positions inside each paper from the per-chunk paper numbers: ``[0, 0, 1]`` -> ``[0, 1, 0]``."""
    if not len(papers):
        return papers
    first = np.flatnonzero(np.concatenate([[True], papers[1:] != papers[:-1]]))
    return np.arange(len(papers)) - np.repeat(first, np.diff(np.append(first, len(papers))))


def _composition_files(index: str, below: int | None) -> list[str]:
    folder = os.path.join(index, "speed_composition")
    if not os.path.isdir(folder):
        return []
    files = sorted(f for f in os.listdir(folder) if f.endswith(".npz"))
    return [os.path.join(folder, f) for f in files if below is None or int(f.split(".")[0]) < below]


def _save_composition(index: str, start: int, c: Composition) -> None:
    folder = os.path.join(index, "speed_composition")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{start:09d}.npz")
    np.savez(path + ".tmp.npz", **c.__dict__)
    os.replace(path + ".tmp.npz", path)


def _load_composition(path: str) -> Composition:
    with np.load(path) as saved:
        return Composition(**{name: saved[name] for name in ("paper", "title", "indptr", "sentences")})


def _save_log(index: str, log: BuildLog) -> None:
    path = os.path.join(index, "speed_build.json")
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(log.__dict__, fh)
    os.replace(path + ".tmp", path)
