"""Per-paper metadata for filters, in paper-number order: ids, year, categories and authors.

Everything is a numpy array, so a saved table opens memory-mapped: categories as codes
into a short list of names (compressed sparse rows), authors as one lower-cased byte
string searched with ``re`` (names end with a newline, so a search never spans two names
or two papers). A filter costs a few vectorised passes, about 10 ms at a million papers.

>>> from ingest.records import make_paper
>>> t = PaperTable.empty().add([make_paper(raw_id="a", title="A", abstract="x", date="2020",
...                                        categories="cs.CL", authors="Tim Dettmers, Noam Shazeer"),
...                             make_paper(raw_id="b", title="B", abstract="y", date="2023", categories="math.OC")])
>>> [t.ids[i] for i in t.allowed(category="cs").nonzero()[0]], t.allowed(author="dettmers").tolist()
(['a'], [True, False])
>>> t.remove(np.array([True, False])).ids, t.allowed(year_min=2021).tolist()
(['b'], [False, True])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

ARRAYS = ("year", "ids_blob", "ids_offsets", "cat_indptr", "cat_codes", "authors_blob", "authors_offsets")


class PaperTable:
    """Never changed in place (searches may hold one): :meth:`add` and :meth:`remove` return new tables."""

    def __init__(self, ids: list[str], arrays: dict[str, np.ndarray], category_names: list[str]):
        self.ids, self.arrays, self.category_names = ids, arrays, category_names
        self.year = arrays["year"]
        self.position = {pid: i for i, pid in enumerate(ids)}
        self._entry_paper: np.ndarray | None = None

    @classmethod
    def empty(cls) -> "PaperTable":
        z = np.zeros
        return cls([], {"year": z(0, np.int16), "ids_blob": z(0, np.uint8), "ids_offsets": z(1, np.int64),
                        "cat_indptr": z(1, np.int64), "cat_codes": z(0, np.uint16), "authors_blob": z(0, np.uint8),
                        "authors_offsets": z(1, np.int64)}, [])

    @classmethod
    def from_arrays(cls, arrays: dict, category_names: list[str]) -> "PaperTable":
        blob, offsets = arrays["ids_blob"].tobytes(), arrays["ids_offsets"]
        ids = blob.decode("utf-8").split("\n")[:-1] if len(blob) else []
        if len(ids) != len(offsets) - 1:  # an id with a newline in it: slice by offsets instead
            ids = [blob[offsets[i]:offsets[i + 1] - 1].decode("utf-8") for i in range(len(offsets) - 1)]
        return cls(ids, {name: arrays[name] for name in ARRAYS}, list(category_names))

    def add(self, papers: Sequence) -> "PaperTable":
        """A new table with ``papers`` appended."""
        names = list(self.category_names)
        code = {n: i for i, n in enumerate(names)}
        cats = [[code.setdefault(c.lower(), len(code)) for c in dict.fromkeys(p.categories)] for p in papers]
        names += list(code)[len(names):]
        ids = [p.paper_id for p in papers]
        authors = ["".join(a.lower().replace("\n", " ") + "\n" for a in p.authors) for p in papers]
        a = self.arrays
        new = {"year": np.concatenate([a["year"], np.array([p.year if p.year is not None else -1 for p in papers],
                                                            np.int16)]),
               **_append_blob(a["ids_blob"], a["ids_offsets"], [i + "\n" for i in ids], "ids"),
               **_append_blob(a["authors_blob"], a["authors_offsets"], authors, "authors"),
               "cat_codes": np.concatenate([a["cat_codes"], np.array([c for cs in cats for c in cs], np.uint16)]),
               "cat_indptr": np.concatenate([a["cat_indptr"], a["cat_indptr"][-1] + np.cumsum([len(c) for c in cats],
                                                                                                dtype=np.int64)])}
        return PaperTable(self.ids + ids, new, names)

    def remove(self, drop: np.ndarray) -> "PaperTable":
        """A new table without the papers where ``drop`` is True."""
        a, keep = self.arrays, ~drop
        new = {"year": a["year"][keep],
               **_keep_blob(a["ids_blob"], a["ids_offsets"], keep, "ids"),
               **_keep_blob(a["authors_blob"], a["authors_offsets"], keep, "authors")}
        entries = np.repeat(keep, np.diff(a["cat_indptr"]))
        new["cat_codes"] = a["cat_codes"][entries]
        new["cat_indptr"] = np.concatenate([[0], np.cumsum(np.diff(a["cat_indptr"])[keep])]).astype(np.int64)
        return PaperTable([pid for pid, k in zip(self.ids, keep.tolist()) if k], new, self.category_names)

    def allowed(self, year_min: int | None = None, year_max: int | None = None, category: str | None = None,
                author: str | None = None, paper_ids: Sequence[str] | None = None) -> np.ndarray | None:
        """Boolean mask of the papers that pass every given filter; None when no filter is given."""
        if year_min is None and year_max is None and not category and not author and paper_ids is None:
            return None
        mask = np.ones(len(self.ids), dtype=bool)
        if year_min is not None:
            mask &= self.year >= year_min
        if year_max is not None:
            mask &= (self.year <= year_max) & (self.year >= 0)
        if category:
            mask &= self._category_mask(category.strip().lower())
        if author:
            mask &= self._author_mask(author.strip().lower())
        if paper_ids is not None:
            listed = np.zeros(len(self.ids), dtype=bool)
            listed[[self.position[p] for p in paper_ids if p in self.position]] = True
            mask &= listed
        return mask

    def _category_mask(self, wanted: str) -> np.ndarray:
        """Papers in ``wanted`` or any of its subcategories ("cs" matches "cs.CL")."""
        codes = [i for i, name in enumerate(self.category_names) if name == wanted or name.startswith(wanted + ".")]
        mask = np.zeros(len(self.ids), dtype=bool)
        if codes:
            if self._entry_paper is None:
                self._entry_paper = np.repeat(np.arange(len(self.ids), dtype=np.int32),
                                              np.diff(self.arrays["cat_indptr"]))
            mask[self._entry_paper[np.isin(self.arrays["cat_codes"], codes)]] = True
        return mask

    def _author_mask(self, needle: str) -> np.ndarray:
        mask = np.zeros(len(self.ids), dtype=bool)
        key = needle.replace("\n", " ").encode("utf-8")
        if key:
            starts = np.fromiter((m.start() for m in re.finditer(re.escape(key), self.arrays["authors_blob"])),
                                 np.int64)
            mask[np.searchsorted(self.arrays["authors_offsets"], starts, side="right") - 1] = True
        return mask


def _append_blob(blob: np.ndarray, offsets: np.ndarray, texts: list[str], name: str) -> dict[str, np.ndarray]:
    encoded = [t.encode("utf-8") for t in texts]
    added = np.frombuffer(b"".join(encoded), np.uint8)
    ends = offsets[-1] + np.cumsum([len(e) for e in encoded], dtype=np.int64)
    return {f"{name}_blob": np.concatenate([blob, added]), f"{name}_offsets": np.concatenate([offsets, ends])}


def _keep_blob(blob: np.ndarray, offsets: np.ndarray, keep: np.ndarray, name: str) -> dict[str, np.ndarray]:
    lengths = np.diff(offsets)
    return {f"{name}_blob": blob[np.repeat(keep, lengths)],
            f"{name}_offsets": np.concatenate([[0], np.cumsum(lengths[keep])]).astype(np.int64)}
