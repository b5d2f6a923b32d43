"""The arrays behind the keyword index: BM25 postings and the per-paper metadata used by filters.

Postings are stored sorted by term (compressed sparse rows): ``indptr[t]:indptr[t + 1]``
slices ``docs`` (paper numbers) and the term's frequency in each field. Adding and
dropping papers rebuilds the arrays with vectorised numpy (sort, bincount), so a
100k-paper index changes in about a second, and queries never see a half-updated state.

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


class Postings:
    """Term -> (paper numbers, body term frequency, title term frequency), plus field lengths per paper."""

    def __init__(self, terms: list[str], indptr, docs, tf_body, tf_title, len_body, len_title):
        self.terms = terms
        self.vocab = {t: i for i, t in enumerate(terms)}
        self._surface: dict[str, int] = {}  # word as written -> term number (-1: dropped), filled as words appear
        self.indptr, self.docs, self.tf_body, self.tf_title = indptr, docs, tf_body, tf_title
        self.len_body, self.len_title = len_body, len_title

    @classmethod
    def empty(cls) -> "Postings":
        z = np.zeros
        return cls([], z(1, np.int64), z(0, np.int32), z(0, np.uint16), z(0, np.uint16), z(0, np.float32),
                   z(0, np.float32))

    @classmethod
    def from_saved(cls, arrays: dict, terms: list[str]) -> "Postings":
        return cls(terms, *(arrays[name] for name in ("indptr", "docs", "tf_body", "tf_title", "len_body",
                                                      "len_title")))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"indptr": self.indptr, "docs": self.docs, "tf_body": self.tf_body, "tf_title": self.tf_title,
                "len_body": self.len_body, "len_title": self.len_title}

    def slice(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        t = self.vocab.get(term)
        if t is None or self.indptr[t] == self.indptr[t + 1]:
            return None
        s, e = self.indptr[t], self.indptr[t + 1]
        return self.docs[s:e], self.tf_body[s:e], self.tf_title[s:e]

    def add(self, titles: Sequence[list[str]], bodies: Sequence[list[str]], offset: int,
            analyse: Callable[[str], str | None]) -> None:
        """Append papers numbered ``offset``, ``offset + 1``, ... given the words of their title and body;
        ``analyse`` turns a word into its index term (None drops it)."""
        title_ids, body_ids = self._term_ids(titles, analyse), self._term_ids(bodies, analyse)
        v = max(len(self.terms), 1)
        t_keys, t_counts = _count(title_ids, offset, v)
        b_keys, b_counts = _count(body_ids, offset, v)
        keys = _unique_sorted(np.concatenate([t_keys, b_keys]))[0]
        tf_title, tf_body = np.zeros(len(keys), np.uint16), np.zeros(len(keys), np.uint16)
        tf_title[np.searchsorted(keys, t_keys)] = np.minimum(t_counts, 65535)
        tf_body[np.searchsorted(keys, b_keys)] = np.minimum(b_counts, 65535)
        old_terms = np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))
        self._rebuild(np.concatenate([old_terms, keys % v]),
                      np.concatenate([self.docs, (keys // v).astype(np.int32)]),
                      np.concatenate([self.tf_body, tf_body]), np.concatenate([self.tf_title, tf_title]))
        self.len_title = np.concatenate([self.len_title, np.array([len(t) for t in title_ids], np.float32)])
        self.len_body = np.concatenate([self.len_body, np.array([len(b) for b in body_ids], np.float32)])

    def remove(self, drop: np.ndarray) -> None:
        """Drop the papers where ``drop`` is True and renumber the rest in order."""
        keep = ~drop[self.docs]
        renumber = (np.cumsum(~drop) - 1).astype(np.int32)
        terms = np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))[keep]
        self._rebuild(terms, renumber[self.docs[keep]], self.tf_body[keep], self.tf_title[keep])
        self.len_body, self.len_title = self.len_body[~drop], self.len_title[~drop]

    def _term_ids(self, word_lists: Sequence[list[str]], analyse: Callable[[str], str | None]) -> list[list[int]]:
        surface = self._surface
        for word in {w for words in word_lists for w in words}.difference(surface):
            found = analyse(word)
            if found is None:
                surface[word] = -1
                continue
            if found not in self.vocab:
                self.vocab[found] = len(self.terms)
                self.terms.append(found)
            surface[word] = self.vocab[found]
        return [[i for i in map(surface.__getitem__, words) if i >= 0] for words in word_lists]

    def _rebuild(self, terms: np.ndarray, docs: np.ndarray, tf_body: np.ndarray, tf_title: np.ndarray) -> None:
        order = np.argsort(terms, kind="stable")  # stable: papers stay in order inside each term
        self.docs, self.tf_body, self.tf_title = docs[order], tf_body[order], tf_title[order]
        self.indptr = np.zeros(len(self.terms) + 1, np.int64)
        np.cumsum(np.bincount(terms, minlength=len(self.terms)), out=self.indptr[1:])


def _count(id_lists: list[list[int]], offset: int, v: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique (paper, term) keys as ``paper * v + term``, sorted, with their counts."""
    lengths = np.fromiter((len(ids) for ids in id_lists), np.int64, len(id_lists))
    flat = np.fromiter(itertools.chain.from_iterable(id_lists), np.int64, int(lengths.sum()))
    keys = np.repeat(np.arange(offset, offset + len(id_lists), dtype=np.int64), lengths) * v + flat
    return _unique_sorted(keys)


def _unique_sorted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values with counts; sorting beats np.unique's hashing here by several times."""
    keys = np.sort(keys)
    if not len(keys):
        return keys, keys
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.diff(np.append(starts, len(keys)))


class PaperTable:
    """Per-paper metadata in paper-number order: ids, year, categories and authors, for filters."""

    def __init__(self, ids: list[str], year: np.ndarray, categories: list[list[str]], authors: list[list[str]]):
        self.ids, self.year, self.categories, self.authors = ids, year, categories, authors
        self.position = {pid: i for i, pid in enumerate(ids)}
        self._by_category: dict[str, list[int]] | None = None
        self._author_text: list[str] | None = None

    @classmethod
    def empty(cls) -> "PaperTable":
        return cls([], np.zeros(0, np.int16), [], [])

    @classmethod
    def from_saved(cls, arrays: dict, info: dict) -> "PaperTable":
        return cls(info["ids"], arrays["year"], info["categories"], info["authors"])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"year": self.year}

    def lists(self) -> dict[str, list]:
        return {"ids": self.ids, "categories": self.categories, "authors": self.authors}

    def add(self, papers: Sequence) -> "PaperTable":
        """A new table with ``papers`` appended (tables are never changed in place: searches may hold one)."""
        years = [p.year if p.year is not None else -1 for p in papers]
        return PaperTable(self.ids + [p.paper_id for p in papers],
                          np.concatenate([self.year, np.array(years, np.int16)]),
                          self.categories + [list(p.categories) for p in papers],
                          self.authors + [list(p.authors) for p in papers])

    def remove(self, drop: np.ndarray) -> "PaperTable":
        """A new table without the papers where ``drop`` is True."""
        keep = (~drop).tolist()
        return PaperTable(list(itertools.compress(self.ids, keep)), self.year[~drop],
                          list(itertools.compress(self.categories, keep)),
                          list(itertools.compress(self.authors, keep)))

    def allowed(self, year_min: int | None = None, year_max: int | None = None, category: str | None = None,
                author: str | None = None, paper_ids: Sequence[str] | None = None) -> np.ndarray | None:
        """Boolean mask of the papers that pass every given filter; None when no filter is given."""
        mask = np.ones(len(self.ids), dtype=bool)
        if year_min is None and year_max is None and not category and not author and paper_ids is None:
            return None
        if year_min is not None:
            mask &= self.year >= year_min
        if year_max is not None:
            mask &= (self.year <= year_max) & (self.year >= 0)
        if category:
            mask &= self._category_mask(category.strip().lower())
        if author:
            needle = author.strip().lower()
            mask &= np.fromiter((needle in text for text in self._authors_lower()), bool, len(self.ids))
        if paper_ids is not None:
            listed = np.zeros(len(self.ids), dtype=bool)
            listed[[self.position[p] for p in paper_ids if p in self.position]] = True
            mask &= listed
        return mask

    def _category_mask(self, wanted: str) -> np.ndarray:
        """Papers in ``wanted`` or any of its subcategories ("cs" matches "cs.CL")."""
        if self._by_category is None:
            self._by_category = {}
            for i, cats in enumerate(self.categories):
                for c in cats:
                    self._by_category.setdefault(c.lower(), []).append(i)
        mask = np.zeros(len(self.ids), dtype=bool)
        for name, members in self._by_category.items():
            if name == wanted or name.startswith(wanted + "."):
                mask[members] = True
        return mask

    def _authors_lower(self) -> list[str]:
        if self._author_text is None:  # names joined by newlines so a needle never spans two authors
            self._author_text = ["\n".join(a).lower() for a in self.authors]
        return self._author_text
