"""The arrays behind the keyword index: BM25 postings and their vocabulary.

Postings are stored sorted by term (compressed sparse rows): ``indptr[t]:indptr[t + 1]``
slices ``docs`` (paper numbers) and the term's frequency in each field. Every array is
plain numpy, so a saved index opens memory-mapped: a query reads the pages of its own
terms and nothing else (a million-paper index opens in well under a second and costs
little resident memory). Adding and dropping papers rebuilds the arrays with vectorised
numpy (sort, bincount) into new arrays, so searches holding the old ones never see a
half-updated state; :class:`PostingsBuilder` adds many batches with one sort at the end.

>>> p = Postings.empty()
>>> p.add([["mice"], ["cat"]], [["treat", "the", "mice", "mice"], ["purr"]], offset=0,
...       analyse=lambda w: None if w == "the" else w)
>>> d, body, title = p.slice("mice"); d.tolist(), body.tolist(), title.tolist()
([0], [2], [1])
>>> p.remove(np.array([True, False])); p.slice("mice") is None, p.slice("cat")[0].tolist()
(True, [0])
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

ARRAYS = ("indptr", "docs", "tf_body", "tf_title", "len_body", "len_title")


class Vocabulary:
    """Term <-> term number. Opened from saved arrays it looks terms up by binary search over
    the saved sorted order (no dict of every term in memory); the first new term builds the dict.

    >>> v = Vocabulary.from_arrays(Vocabulary(["mice", "cat"]).arrays())
    >>> v.get("cat"), v.get("dog"), v.add("dog"), v.get("dog"), len(v)
    (1, None, 2, 2, 3)
    """

    def __init__(self, terms: list[str] | None = None):
        self._terms = list(terms or [])
        self._index: dict[str, int] | None = {t: i for i, t in enumerate(self._terms)}
        self._saved: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._found: dict[str, int | None] = {}

    @classmethod
    def from_arrays(cls, arrays: dict) -> "Vocabulary":
        vocab = cls()
        vocab._index, vocab._terms = None, []
        vocab._saved = arrays["terms_blob"], arrays["terms_offsets"], arrays["terms_order"]
        return vocab

    def __len__(self) -> int:
        return len(self._saved[1]) - 1 if self._saved is not None else len(self._terms)

    def get(self, term: str) -> int | None:
        if self._saved is None:
            return self._index.get(term)
        if term not in self._found:
            if len(self._found) > 100_000:  # queries repeat their words: remember lookups, within bounds
                self._found.clear()
            self._found[term] = self._search(term)
        return self._found[term]

    def _search(self, term: str) -> int | None:
        blob, offsets, order = self._saved
        key, lo, hi = term.encode("utf-8"), 0, len(order)
        while lo < hi:  # bisect over the terms in byte order
            mid = (lo + hi) // 2
            t = int(order[mid])
            if blob[offsets[t]:offsets[t + 1]].tobytes() < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(order):
            t = int(order[lo])
            if blob[offsets[t]:offsets[t + 1]].tobytes() == key:
                return t
        return None

    def add(self, term: str) -> int:
        self._materialise()
        found = self._index.get(term)
        if found is None:
            found = self._index[term] = len(self._terms)
            self._terms.append(term)
        return found

    def terms(self) -> list[str]:
        self._materialise()
        return self._terms

    def arrays(self) -> dict[str, np.ndarray]:
        if self._saved is not None:
            return dict(zip(("terms_blob", "terms_offsets", "terms_order"), self._saved))
        encoded = [t.encode("utf-8") for t in self._terms]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        order = np.array(sorted(range(len(encoded)), key=encoded.__getitem__), np.int32)
        return {"terms_blob": np.frombuffer(b"".join(encoded), np.uint8), "terms_offsets": offsets, "terms_order": order}

    def _materialise(self) -> None:
        if self._saved is not None:
            blob, offsets, _ = self._saved
            text = blob.tobytes()
            self._terms = [text[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(len(offsets) - 1)]
            self._index = {t: i for i, t in enumerate(self._terms)}
            self._saved = None


class Postings:
    """Term -> (paper numbers, body term frequency, title term frequency), plus field lengths per paper."""

    def __init__(self, vocab: Vocabulary, indptr, docs, tf_body, tf_title, len_body, len_title):
        self.vocab = vocab
        self._surface: dict[str, int] = {}  # word as written -> term number (-1: dropped), filled as words appear
        self.indptr, self.docs, self.tf_body, self.tf_title = indptr, docs, tf_body, tf_title
        self.len_body, self.len_title = len_body, len_title

    @classmethod
    def empty(cls) -> "Postings":
        z = np.zeros
        return cls(Vocabulary(), z(1, np.int64), z(0, np.int32), z(0, np.uint16), z(0, np.uint16), z(0, np.float32),
                   z(0, np.float32))

    @classmethod
    def from_arrays(cls, arrays: dict) -> "Postings":
        return cls(Vocabulary.from_arrays(arrays), *(arrays[name] for name in ARRAYS))

    def arrays(self) -> dict[str, np.ndarray]:
        return {**{name: getattr(self, name) for name in ARRAYS}, **self.vocab.arrays()}

    def slice(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        t = self.vocab.get(term)
        if t is None or t + 1 >= len(self.indptr) or self.indptr[t] == self.indptr[t + 1]:
            return None
        s, e = self.indptr[t], self.indptr[t + 1]
        return self.docs[s:e], self.tf_body[s:e], self.tf_title[s:e]

    def add(self, titles: Sequence[list[str]], bodies: Sequence[list[str]], offset: int,
            analyse: Callable[[str], str | None]) -> None:
        """Append papers numbered ``offset``, ``offset + 1``, ... given the words of their title and body;
        ``analyse`` turns a word into its index term (None drops it)."""
        builder = PostingsBuilder(self, analyse)
        builder.add(titles, bodies)
        builder.finish()

    def remove(self, drop: np.ndarray) -> None:
        """Drop the papers where ``drop`` is True and renumber the rest in order (no sort: order is kept)."""
        keep = ~drop[self.docs]
        renumber = (np.cumsum(~drop) - 1).astype(np.int32)
        kept = np.zeros(len(keep) + 1, np.int64)
        np.cumsum(keep, out=kept[1:])
        self.indptr = kept[self.indptr]
        self.docs, self.tf_body, self.tf_title = renumber[self.docs[keep]], self.tf_body[keep], self.tf_title[keep]
        self.len_body, self.len_title = self.len_body[~drop], self.len_title[~drop]

    def _term_ids(self, word_lists: Sequence[list[str]], analyse: Callable[[str], str | None]) -> list[list[int]]:
        surface = self._surface
        for word in {w for words in word_lists for w in words}.difference(surface):
            found = analyse(word)
            surface[word] = -1 if found is None else self.vocab.add(found)
        return [[i for i in map(surface.__getitem__, words) if i >= 0] for words in word_lists]

    def _append(self, terms: np.ndarray, docs: np.ndarray, tf_body: np.ndarray, tf_title: np.ndarray) -> None:
        """Add postings of papers numbered after every indexed one: each goes at the end of its term's slice."""
        order = np.argsort(terms, kind="stable")  # stable: papers stay in order inside each term
        terms = terms[order]
        known = len(self.indptr) - 1
        at = np.where(terms < known, self.indptr[np.minimum(terms, known - 1) + 1] if known else 0, len(self.docs))
        self.docs = np.insert(self.docs, at, docs[order])
        self.tf_body = np.insert(self.tf_body, at, tf_body[order])
        self.tf_title = np.insert(self.tf_title, at, tf_title[order])
        counts = np.bincount(terms, minlength=len(self.vocab)).astype(np.int64)
        counts[:known] += np.diff(self.indptr)
        indptr = np.zeros(len(self.vocab) + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        self.indptr = indptr


class PostingsBuilder:
    """Adds batches of papers to ``postings`` and sorts once in :meth:`finish` (a bulk build is one sort)."""

    def __init__(self, postings: Postings, analyse: Callable[[str], str | None]):
        self.postings, self.analyse = postings, analyse
        self.papers = len(postings.len_body)
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._lengths: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, titles: Sequence[list[str]], bodies: Sequence[list[str]]) -> None:
        p = self.postings
        title_ids, body_ids = p._term_ids(titles, self.analyse), p._term_ids(bodies, self.analyse)
        t_keys, t_counts = _count(title_ids, self.papers)
        b_keys, b_counts = _count(body_ids, self.papers)
        keys = _unique_sorted(np.concatenate([t_keys, b_keys]))[0]
        tf_title, tf_body = np.zeros(len(keys), np.uint16), np.zeros(len(keys), np.uint16)
        tf_title[np.searchsorted(keys, t_keys)] = np.minimum(t_counts, 65535)
        tf_body[np.searchsorted(keys, b_keys)] = np.minimum(b_counts, 65535)
        self._parts.append(((keys & 0xFFFFFFFF).astype(np.int32), (keys >> 32).astype(np.int32), tf_body, tf_title))
        self._lengths.append((np.array([len(b) for b in body_ids], np.float32),
                              np.array([len(t) for t in title_ids], np.float32)))
        self.papers += len(titles)

    def finish(self) -> Postings:
        p = self.postings
        if self._parts:
            p._append(*(np.concatenate(column) for column in zip(*self._parts)))
            p.len_body = np.concatenate([p.len_body, *(b for b, _ in self._lengths)])
            p.len_title = np.concatenate([p.len_title, *(t for _, t in self._lengths)])
        self._parts, self._lengths = [], []
        return p


def _count(id_lists: list[list[int]], offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique (paper, term) keys as ``paper << 32 | term``, sorted, with their counts."""
    lengths = np.fromiter((len(ids) for ids in id_lists), np.int64, len(id_lists))
    flat = np.fromiter(itertools.chain.from_iterable(id_lists), np.int64, int(lengths.sum()))
    keys = (np.repeat(np.arange(offset, offset + len(id_lists), dtype=np.int64), lengths) << 32) | flat
    return _unique_sorted(keys)


def _unique_sorted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values with counts; sorting beats np.unique's hashing here by several times."""
    keys = np.sort(keys)
    if not len(keys):
        return keys, keys
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.diff(np.append(starts, len(keys)))
