"""Which incoming records are the same paper, and what that paper becomes.

Two records are one paper when they share an id, or when they share an abstract
fingerprint and at most one of them has an explicit id (an arXiv id or a source's
own id; "doc-..." ids are derived from the text). Two different explicit ids stay
two papers. Records with the same abstract are combined with :func:`join`, which
keeps the best value of every field and does not depend on the order it sees
records in, so re-ingesting a source changes nothing; a changed abstract under the
same id goes through :func:`ingest.records.merge` (the newer version wins).

>>> from ingest.records import make_paper
>>> a = make_paper(abstract="QLoRA finetunes in 4 bits.", source="lines.txt")
>>> b = make_paper(raw_id="2305.14314v2", abstract="QLoRA finetunes in 4 bits!", source="dump.txt")
>>> c = make_paper(title="QLoRA", abstract="QLoRA finetunes in 4 bits.", source="page.txt")
>>> plan = plan_batch([a, b, c], stored={}, stored_by_fp={}, seen={})
>>> [(g.target, g.result.title, g.result.version, len(g.records)) for g in plan]
[('2305.14314', 'QLoRA', 'v2', 3)]
>>> join(join(a, b), c) == join(c, join(b, a))
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ingest.records import Paper, merge

_DERIVED = re.compile(r"doc-[0-9a-f]{16}")


@dataclass(frozen=True)
class Group:
    """One paper of a batch: its records, what the index held, and what it becomes.

    ``status`` is "added", "updated" or "unchanged" for the first time a run meets
    the paper; ``first`` is False when an earlier batch of the same run already did.
    """

    target: str
    records: tuple[Paper, ...]
    before: Paper | None
    absorbed: tuple[Paper, ...]  # stored copies under a derived id, removed once merged in
    result: Paper
    status: str
    first: bool

    @property
    def changed(self) -> bool:
        return self.before is None or bool(self.absorbed) or self.result.content_hash != self.before.content_hash


def is_derived(paper_id: str) -> bool:
    """True for the ids make_paper derives from the text ("doc-" and 16 hex digits)."""
    return _DERIVED.fullmatch(paper_id) is not None


def id_rank(paper: Paper) -> tuple[int, str]:
    """Smaller is preferred: an arXiv id, then another explicit id, then a derived one."""
    return (2 if is_derived(paper.paper_id) else 0 if paper.arxiv_id else 1, paper.paper_id)


def join(a: Paper, b: Paper) -> Paper:
    """Combine two records of the same abstract field by field; commutative and idempotent."""
    keep = min(a, b, key=id_rank)
    arxiv_id = max(a.arxiv_id, b.arxiv_id)
    version = max(a.version, b.version, key=lambda v: (int(v[1:]) if v[1:].isdigit() else 0, v))
    url = f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else _best(a.url, b.url)
    return replace(keep, arxiv_id=arxiv_id, version=version, url=url, abstract=_best(a.abstract, b.abstract),
                   title=_best(a.title, b.title), date=_best(a.date, b.date), authors=_best(a.authors, b.authors),
                   categories=_best(a.categories, b.categories), sources=tuple(dict.fromkeys(a.sources + b.sources)))


def combine(old: Paper, new: Paper) -> Paper:
    """``old`` and ``new`` are one paper: join the same abstract, else let the newer version win."""
    if old.fingerprint == new.fingerprint:
        return join(old, new)
    if old.paper_id != new.paper_id and is_derived(old.paper_id):
        old, new = new, old  # merge() keeps the explicit id of its first argument
    return merge(old, new)


def plan_batch(batch: Sequence[Paper], stored: Mapping[str, Paper], stored_by_fp: Mapping[str, Sequence[Paper]],
               seen: Mapping[str, str]) -> list[Group]:
    """Group a batch into papers against what the index holds.

    ``stored``: index papers by id (at least those of the batch's ids);
    ``stored_by_fp``: index papers sharing a batch record's fingerprint;
    ``seen``: ids this run already handled, with their status.
    """
    known = {p.paper_id: p for p in stored.values()}
    known.update((p.paper_id, p) for papers in stored_by_fp.values() for p in papers)
    target_for_fp = _explicit_targets([*batch, *known.values()])
    members: dict[str, list[Paper]] = {}
    for record in batch:
        target = record.paper_id if not is_derived(record.paper_id) else \
            target_for_fp.get(record.fingerprint, record.paper_id)
        members.setdefault(target, []).append(record)
    absorbed: dict[str, list[Paper]] = {}
    for paper in sorted(known.values(), key=id_rank):
        target = target_for_fp.get(paper.fingerprint)
        if target and is_derived(paper.paper_id) and target != paper.paper_id:
            absorbed.setdefault(target, []).append(paper)
            members.setdefault(target, [])
    return [_group(target, tuple(records), known.get(target), tuple(absorbed.get(target, ())), seen)
            for target, records in members.items()]


def _explicit_targets(papers: Iterable[Paper]) -> dict[str, str]:
    """For each fingerprint, the preferred explicit id among the papers carrying it."""
    best: dict[str, Paper] = {}
    for paper in papers:
        if not is_derived(paper.paper_id):
            current = best.get(paper.fingerprint)
            if current is None or id_rank(paper) < id_rank(current):
                best[paper.fingerprint] = paper
    return {fp: paper.paper_id for fp, paper in best.items()}


def _group(target: str, records: tuple[Paper, ...], before: Paper | None, absorbed: tuple[Paper, ...],
           seen: Mapping[str, str]) -> Group:
    result = before
    for old in absorbed:
        result = old if result is None else combine(result, old)
    folded = None
    for record in records:  # the batch's own records first, so their order decides only among themselves
        folded = record if folded is None else combine(folded, record)
    if folded is not None:
        result = folded if result is None else combine(result, folded)
    assert result is not None and result.paper_id == target, (target, result)
    earlier = [seen[i] for i in (target, *(p.paper_id for p in absorbed)) if i in seen]
    changed = before is None or bool(absorbed) or result.content_hash != before.content_hash
    if earlier:
        status = "updated" if changed and earlier[0] == "unchanged" else earlier[0]
    else:
        status = "added" if before is None and not absorbed else "updated" if changed else "unchanged"
    return Group(target, records, before, absorbed, result, status, first=not earlier)


def _best(a, b):
    """The fuller of two values (longer wins, ties broken by value): empty never beats filled."""
    return max(a, b, key=lambda v: (len(v), v))
