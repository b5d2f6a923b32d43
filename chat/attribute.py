"""Citations attached by code: every claim of an answer is matched against the sources shown.

For each sentence (or clause, when a marker sits mid-sentence) of the text:

- a model's marker is **kept** when that source supports the claim (chat/support.py);
- a claim citing nothing, or only sources that do not support it, gets the marker of the
  source that supports it best (**added** / **replaced**);
- a claim that no source supports is **flagged**: it keeps no marker and is followed by
  :data:`chat.citations.UNSUPPORTED_FLAG`, so the reader sees it in the UI and the CLI;
- a refusal sentence ("the sources do not mention …") is **dropped**, and so is a claim no source
  supports that only restates the question ("TWIST is trained differently from a speech language
  model" for "How is TWIST trained differently …?"): it claims nothing to flag (a next claim opening
  "It uses a warm start …" then reads "TWIST uses a warm start …");
- short connecting text ("In short:") is left as it is.

A claim opening with a pronoun ("This outperforms …") is judged with the name the claim
before it opens with in its place. A claim that only restates the question is an *echo*.
Markers are then renumbered by first citation. The text is *usable* as an answer when at
least one claim is supported and not an echo, and flagged claims do not outnumber supported ones.

>>> abstracts = ["QLoRA finetunes a 65B model on one 48GB GPU.", "LoRA adds low-rank adapters to frozen weights."]
>>> checked = check_citations("LoRA adds low-rank adapters [1]. QLoRA finetunes a 65B model on one 48GB GPU. "
...                           "QLoRA finetunes on a phone [2]. The sources do not say more.", abstracts, vectors=None)
>>> print(checked.text)
LoRA adds low-rank adapters [1]. QLoRA finetunes a 65B model on one 48GB GPU [2]. QLoRA finetunes on a phone [unsupported].
>>> [s.action for s in checked.sentences], checked.order, checked.refusals, checked.usable
(['replaced', 'added', 'flagged'], (2, 1), 1, True)
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from chat.citations import UNSUPPORTED_FLAG, cite, cited_lines, clauses, parse_markers, strip_markers
from chat.refusal import is_refusal
from chat.sentences import content_words, split_sentences
from chat.claims import is_echo, named_opening, resolved
from chat.support import Support, SupportConfig, judge_many


@dataclass(frozen=True)
class CheckConfig:
    support: SupportConfig = SupportConfig()
    min_claim_words: int = 3  # fewer content words ("In short:", "Yes.") is not a claim to check


@dataclass(frozen=True)
class SentenceCheck:
    text: str  # the sentence as it reads in the checked answer
    cited: tuple[int, ...]  # final citation numbers
    supported: bool
    cosine: float  # best cosine with a sentence of the cited (or best) source
    overlap: float
    action: str = "kept"  # kept | added | replaced | flagged
    problems: tuple[str, ...] = ()  # why the best source does not support it (flagged claims)
    echo: bool = False  # it only restates the question (see is_echo): supported, but it answers nothing

    def to_json(self) -> dict:
        return {"sentence": self.text, "citations": list(self.cited), "supported": self.supported}


@dataclass(frozen=True)
class CheckedText:
    """The answer with code-attached markers. ``order[i]`` is the 1-based source number cited as ``[i + 1]``."""

    text: str
    order: tuple[int, ...]
    supporting: dict[int, str]  # final number -> the source sentence that best supports its claims
    supported: dict[int, bool]  # final number -> every claim citing it is supported
    sentences: tuple[SentenceCheck, ...]  # the claims, in order
    total: int  # citation numbers the text had
    removed: int  # of those, numbers no shown source has, or that the check moved elsewhere
    refusals: int = 0  # refusal sentences dropped
    restated: int = 0  # unsupported claims that only restate the question, dropped

    @property
    def unsupported(self) -> int:
        return sum(1 for s in self.sentences if not s.supported)

    @property
    def uncited(self) -> int:
        return sum(1 for s in self.sentences if not s.cited)

    @property
    def usable(self) -> bool:
        """At least one supported claim that is not an echo of the question, and no fewer supported than
        flagged (those stay visible, flagged)."""
        good = len(self.sentences) - self.unsupported
        return good >= 1 and good >= self.unsupported and not self.echoes_only

    @property
    def echoes_only(self) -> bool:
        """Every supported claim only restates the question."""
        said = [s for s in self.sentences if s.supported]
        return bool(said) and all(s.echo for s in said)


def check_citations(text: str, abstracts: Sequence[str], vectors: Callable[[list[str]], np.ndarray] | None,
                    config: CheckConfig = CheckConfig(), titles: Sequence[str] = (), question: str = "") -> CheckedText:
    """Attach, keep, replace or flag the citations of ``text`` against ``abstracts`` (numbered from 1).

    ``question``: what the text answers (a claim may repeat its words; see chat.support.judge_many).
    """
    sources = [(split_sentences(a) or [a], titles[i] if i < len(titles) else "") for i, a in enumerate(abstracts)]
    split = [[clauses(sentence) for sentence, _ in line] for line in cited_lines(text)]
    lines = [[piece for sentence in line for piece in sentence] for line in split]
    pieces = [p for line in lines for p in line]
    ends = set(itertools.accumulate(len(sentence) for line in split for sentence in line))  # index after each sentence
    refusals = {i for i, (clause, _) in enumerate(pieces) if is_refusal(strip_markers(clause))}
    texts = {i: _claim_text(clause) for i, (clause, _) in enumerate(pieces) if i not in refusals}
    claims = [i for i, t in texts.items() if len(content_words(t)) >= config.min_claim_words]
    judged = judge_many(resolved([texts[i] for i in claims]), sources, vectors, config.support, question)
    decided = {i: _decide(pieces[i][1], row, len(sources)) for i, row in zip(claims, judged)}
    echoes = {i for i in claims if is_echo(texts[i], question)}
    restated = {i for i in echoes if decided[i].action == "flagged"}
    for i in restated:
        del decided[i]
    # a restating clause its sentence goes on from ("Finetuning a 65B model with QLoRA [1] leads to …") stays as
    # that sentence's subject, unmarked: dropping it would leave "leads to …"
    restated = {i for i in restated if i + 1 in ends}
    # the claim after a dropped restatement that opens "It …" gets the name the restatement gave ("TWIST uses …")
    renamed = {i + 1: text for i in restated if i + 1 in texts and (text := named_opening(texts[i], pieces[i + 1][0]))}
    lines = [[(renamed.get(k, clause), numbers) for k, (clause, numbers) in numbered] for numbered in _numbered(lines)]
    total = sum(len(m.numbers) for m in parse_markers(text))
    return replace(_assemble(lines, decided, refusals | restated, total, echoes), refusals=len(refusals),
                   restated=len(restated))  # both are dropped alike; counted apart


def _numbered(lines: list[list[tuple[str, tuple[int, ...]]]]) -> list[list[tuple[int, tuple[str, tuple[int, ...]]]]]:
    """Each line's pieces with their index among all pieces."""
    out, at = [], 0
    for line in lines:
        out.append(list(enumerate(line, start=at)))
        at += len(line)
    return out


def _claim_text(clause: str) -> str:
    """The claim to judge: markers and flags gone, a leading ", while" / "and" dropped."""
    return re.sub(r"^[\s,;:]*(?:(?:and|while|whereas|but)\s+)?", "", strip_markers(clause), flags=re.IGNORECASE)


@dataclass(frozen=True)
class _Decision:
    cited: tuple[int, ...]  # 1-based source numbers, before renumbering
    support: Support
    action: str


def _decide(wanted: tuple[int, ...], row: list[Support], n_sources: int) -> _Decision:
    valid = [n for n in wanted if 1 <= n <= n_sources]
    good = [n for n in valid if row[n - 1].supported]
    if good:
        return _Decision(tuple(good), max((row[n - 1] for n in good), key=lambda s: s.score), "kept")
    supporting = [j for j in range(n_sources) if row[j].supported]
    if supporting:
        best = max(supporting, key=lambda j: row[j].score)
        return _Decision((best + 1,), row[best], "replaced" if valid else "added")
    closest = max(row, key=lambda s: s.score) if row else Support(False, 0.0, 0.0, "", ())
    return _Decision((), closest, "flagged")


def _assemble(lines, decided: dict[int, _Decision], dropped: set[int], total: int, echoes: set[int]) -> CheckedText:
    order: list[int] = []
    for i in sorted(decided):
        order += [n for n in decided[i].cited if n not in order]
    number = {old: k + 1 for k, old in enumerate(order)}
    out_lines, checks, kept, at = [], [], 0, 0
    best: dict[int, Support] = {}
    for line in lines:
        parts = []
        for clause, wanted in line:
            i, at = at, at + 1
            claim = strip_markers(clause)
            if i in dropped or i not in decided:  # refusals go; connecting text stays, unmarked
                parts.append("" if i in dropped else claim)
                continue
            d = decided[i]
            final = tuple(sorted(number[n] for n in d.cited))
            kept += len(set(wanted) & set(d.cited))
            shown = cite(claim, final, "" if final else UNSUPPORTED_FLAG)
            parts.append(shown)
            checks.append(SentenceCheck(shown.strip(), final, bool(final), d.support.cosine, d.support.overlap,
                                        d.action, () if final else d.support.problems, i in echoes))
            for n in final:
                if n not in best or d.support.score > best[n].score:
                    best[n] = d.support
        out_lines.append(_join(parts))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out_lines)).strip()
    supporting = {n: best[n].sentence for n in best}
    return CheckedText(text, tuple(order), supporting, {n: True for n in best}, tuple(checks), total,
                       total - kept)


def _join(parts: list[str]) -> str:
    """Clauses back into a line: a clause opening with punctuation attaches without a space."""
    out = ""
    for part in parts:
        part = part.strip()
        if not part:
            continue
        out += part if not out or part[0] in ",;:)" else " " + part
    return out
