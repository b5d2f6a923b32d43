"""BM25 keyword search over the indexed papers, kept in step with the store and saved beside it.

Each paper is one document with two fields, its title and its abstract: the text its
chunks are cut from. On SciFact this ranks as well as BM25 over the chunks collapsed
to papers (nDCG@10 0.697 both) with fewer postings, since chunks overlap and each
repeats the title; and it lets the title weigh more (``title_weight``). Postings are compressed-sparse-row
numpy arrays (term -> document numbers and term frequencies per field), so a query is
a few slices and one ``np.bincount``. Saved, every array is one ``.npy`` file opened
memory-mapped: a million-paper index opens in under a second and a query reads only its
terms' pages. The index remembers the store generation it reflects; opening it on a
newer store applies only what changed.

>>> import tempfile
>>> from ingest.records import make_paper
>>> from ingest.store import Chunk, Store, StoreConfig
>>> store = Store.open(StoreConfig(path=tempfile.mkdtemp()), model="m", dim=2)
>>> a = make_paper(raw_id="a", title="Mice", abstract="Treating mice with drugs.", date="2020")
>>> b = make_paper(raw_id="b", title="Cats", abstract="Cats purr at night.", date="2021")
>>> store.write([a, b], [Chunk("a", 0, 1, a.abstract), Chunk("b", 0, 1, b.abstract)], [[1, 0], [0, 1]])
>>> index = KeywordIndex.open(store, tempfile.mkdtemp())
>>> [pid for pid, _ in index.top("drug treatment", k=2)], index.built
(['a'], True)
>>> index.papers.allowed(year_min=2021).nonzero()[0].tolist()
[1]
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from chat.paper_table import PaperTable
from chat.postings import Postings, PostingsBuilder
from chat.text import STOP_WORDS, term, tokenize, words

# bump when analysis or layout changes (3: years from arXiv ids; 4: memory-mapped .npy files): others are rebuilt
_FORMAT = 4


@dataclass(frozen=True)
class KeywordConfig:
    """BM25 settings. ``stem``/``stop_words`` shape the saved index; the rest apply at query time."""

    k1: float = 0.9
    b: float = 0.4
    title_weight: float = 2.0  # a title word counts this many times a word of the abstract (BM25F-style)
    stem: bool = True
    stop_words: bool = True


class KeywordIndex:
    """BM25 over the papers of a store. Open with :meth:`open`; keep current with :meth:`sync`."""

    build_batch = 20_000  # papers analysed at a time when building from scratch (bounds memory at a million)

    def __init__(self, config: KeywordConfig, directory: str | None):
        self.config, self.directory = config, directory
        self.generation = 0
        self.postings = Postings.empty()
        self.papers = PaperTable.empty()
        self.built = False  # True when this object indexed every paper from scratch
        self.updated = 0  # papers (re)indexed or dropped by this object's syncs
        self._norm_cache: tuple[tuple, np.ndarray] | None = None

    @classmethod
    def open(cls, store, directory: str | None, config: KeywordConfig = KeywordConfig()) -> "KeywordIndex":
        """Load the saved index from ``directory`` (when compatible) and bring it up to date with ``store``."""
        index = cls(config, directory)
        if directory:
            index._load()
        index.sync(store)
        return index

    # -- keeping in step with the store --------------------------------------------------------------------
    def sync(self, store) -> int:
        """Apply the store's changes since the last sync; returns how many papers were (re)indexed or dropped."""
        target = store.meta.generation
        if target == self.generation:
            return 0
        if self.generation == 0 or target < self.generation:  # new, or the store was rebuilt: start over
            changed = self._replace_all(store)
        else:
            changed = self._apply_changes(store)
        self.generation = target
        self.updated += changed
        self._save()
        return changed

    def _replace_all(self, store) -> int:
        self.postings, self.papers = Postings.empty(), PaperTable.empty()
        builder, batch = PostingsBuilder(self.postings, self._term), []
        for paper in store.iter_papers():
            batch.append(paper)
            if len(batch) == self.build_batch:
                self._add_batch(builder, batch)
                batch = []
        self._add_batch(builder, batch)
        builder.finish()
        self._norm_cache = None
        self.built = True
        return len(self.papers.ids)

    def _add_batch(self, builder: PostingsBuilder, papers: Sequence) -> None:
        if papers:
            builder.add([words(p.title) for p in papers], [words(p.abstract) for p in papers])
            self.papers = self.papers.add(papers)

    def _apply_changes(self, store) -> int:
        changed = list(dict.fromkeys(pid for _, pid, _ in store.iter_chunks(self.generation)))
        fetched = store.get_papers(changed)
        known = set(self.papers.position)
        if store.stats().papers == len(known | set(fetched)):
            gone = [pid for pid in changed if pid not in fetched]  # nothing else removed: skip listing every id
        else:
            live = set(store.paper_ids())
            gone = [pid for pid in self.papers.ids if pid not in live]
        self._remove([*gone, *fetched])
        self._add(list(fetched.values()))
        return len(set(gone) | set(fetched))

    def _add(self, papers: Sequence) -> None:
        if not papers:
            return
        builder = PostingsBuilder(self.postings, self._term)
        self._add_batch(builder, papers)
        builder.finish()
        self._norm_cache = None

    def _remove(self, paper_ids: Iterable[str]) -> None:
        drop = np.zeros(len(self.papers.ids), dtype=bool)
        for pid in paper_ids:
            pos = self.papers.position.get(pid)
            if pos is not None:
                drop[pos] = True
        if drop.any():
            self.postings.remove(drop)
            self.papers = self.papers.remove(drop)
            self._norm_cache = None

    def _tokenize(self, text: str) -> list[str]:
        return tokenize(text, stem=self.config.stem, stop_words=self._stop_words)

    def _term(self, word: str) -> str | None:
        return term(word, stem=self.config.stem, stop_words=self._stop_words)

    @property
    def _stop_words(self) -> frozenset[str]:
        return STOP_WORDS if self.config.stop_words else frozenset()

    # -- searching ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.papers.ids)

    def scores(self, query: str, config: KeywordConfig | None = None) -> tuple[np.ndarray, float]:
        """BM25 score of every paper, and the best score any paper could reach (for normalising)."""
        cfg = config or self.config
        n = len(self)
        terms, counts = np.unique(np.array(self._tokenize(query), dtype=object), return_counts=True) \
            if query.strip() else (np.array([]), np.array([]))
        docs, weights, best = [], [], 0.0
        norm = self._norm(cfg)
        for term, qtf in zip(terms, counts):
            found = self.postings.slice(term)
            if found is None:
                continue
            d, tf_body, tf_title = found
            idf = float(np.log1p((n - len(d) + 0.5) / (len(d) + 0.5)))
            tf = tf_body + np.float32(cfg.title_weight) * tf_title
            docs.append(d)
            weights.append((idf * qtf * (cfg.k1 + 1)) * tf / (tf + norm[d]))
            best += idf * qtf * (cfg.k1 + 1)
        if not docs:
            return np.zeros(n, dtype=np.float32), 0.0
        return np.bincount(np.concatenate(docs), np.concatenate(weights), minlength=n).astype(np.float32), best

    def top(self, query: str, k: int, allowed: np.ndarray | None = None,
            config: KeywordConfig | None = None) -> list[tuple[str, float]]:
        """The ``k`` best (paper_id, score) pairs with a positive score, among ``allowed`` papers when given."""
        scores, _ = self.scores(query, config)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        return [(self.papers.ids[i], float(scores[i])) for i in top_indices(scores, k) if scores[i] > 0]

    def _norm(self, cfg: KeywordConfig) -> np.ndarray:
        """k1 * (1 - b + b * dl / avgdl) per paper, cached per setting (it only changes with the index)."""
        key = (cfg.k1, cfg.b, cfg.title_weight)
        if self._norm_cache is None or self._norm_cache[0] != key:
            length = self.postings.len_body + cfg.title_weight * self.postings.len_title
            avg = float(length.mean()) if len(length) else 1.0
            self._norm_cache = key, (cfg.k1 * (1 - cfg.b + cfg.b * length / max(avg, 1e-9))).astype(np.float32)
        return self._norm_cache[1]

    # -- persistence -------------------------------------------------------------------------------------------
    def _analyser(self) -> dict:
        return {"format": _FORMAT, "stem": self.config.stem, "stop_words": self.config.stop_words}

    def _save(self) -> None:
        """Write every array as ``<token>/<name>.npy``, then point ``index.json`` at it, then reopen memory-mapped.

        A reader never sees a half-written index: the folder is complete before index.json names it.
        """
        if not self.directory:
            return
        token = uuid.uuid4().hex
        folder = os.path.join(self.directory, token)
        os.makedirs(folder + ".tmp")
        for name, array in {**self.postings.arrays(), **self.papers.arrays}.items():
            np.save(os.path.join(folder + ".tmp", f"{name}.npy"), np.ascontiguousarray(array))
        os.replace(folder + ".tmp", folder)
        info = {**self._analyser(), "generation": self.generation, "token": token,
                "categories": self.papers.category_names}
        staged = os.path.join(self.directory, f"index.json.{token}.tmp")  # two processes may save at once
        with open(staged, "w", encoding="utf-8") as fh:
            json.dump(info, fh)
        os.replace(staged, os.path.join(self.directory, "index.json"))
        self._load()  # memory-mapped from now on: the arrays built in memory are freed
        _remove_stale(self.directory, keep=token)

    def _load(self) -> None:
        try:
            with open(os.path.join(self.directory, "index.json"), encoding="utf-8") as fh:
                info = json.load(fh)
            if any(info.get(key) != value for key, value in self._analyser().items()):
                return  # another analysis or layout: sync() rebuilds from the store
            folder = os.path.join(self.directory, str(info["token"]))
            # plain ndarray views of the maps: slicing an np.memmap costs microseconds more per slice
            arrays = {name[:-4]: np.load(os.path.join(folder, name), mmap_mode="r").view(np.ndarray)
                      for name in os.listdir(folder) if name.endswith(".npy")}
            postings, papers = Postings.from_arrays(arrays), PaperTable.from_arrays(arrays, info["categories"])
        except (OSError, ValueError, KeyError, TypeError):
            return  # nothing saved yet, or damaged: sync() rebuilds from the store
        if len(postings.len_body) != len(papers.ids):
            return
        self.postings, self.papers, self.generation = postings, papers, int(info["generation"])
        self._norm_cache = None


def _remove_stale(directory: str, keep: str, grace_s: float = 60.0) -> None:
    """Delete saved folders other than ``keep`` once they are ``grace_s`` old (another process may be opening one)."""
    now = time.time()
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name != keep and os.path.isdir(path) and now - os.path.getmtime(path) > grace_s:
            shutil.rmtree(path, ignore_errors=True)
    for name in ("postings.npz",):  # the layout before format 4
        if os.path.exists(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first (argpartition keeps this O(n))."""
    if k <= 0 or not len(scores):
        return np.zeros(0, dtype=np.int64)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(len(scores))
    return part[np.argsort(-scores[part], kind="stable")]
