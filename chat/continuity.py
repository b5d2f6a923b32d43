"""A follow-up is answered from the paper the conversation was already reading.

"how many datasets were used for it?" after "What is instruction tuning?" is rewritten to "how many
datasets were used for instruction tuning?": a question many papers answer, each about its own
datasets. The researcher means the paper the previous answer quoted first, so when retrieval finds that
paper again it is answered from first (the last answer that cited one: a follow-up that was not covered
leaves the conversation where it was), provided it names the conversation's subject: when the previous
answer quoted a neighbouring paper (VocabTrim on "speculative decoding" for a question on speculative
sampling), the follow-up is not held to it. A follow-up that names something that paper does not
("What about MALMEN?" after MEMIT) turns to another paper and is left to retrieval.

The same paper settles the evidence gate for a follow-up that only narrows what was asked: "What
about on GSM8K?" after "Does chain-of-thought prompting work for small models?" is covered when the
chain-of-thought paper reports GSM8K, though MiniLM, which never saw "GSM8K", scores the rewritten
question low. Every word the follow-up adds to the subject must be in that paper, and they must be rare
enough in the index to say something ("Why?" adds nothing, "Does it run on TPUs?" adds a word the
paper lacks): the gate decides those as before.

The history holds answer texts, not paper ids (the app and ``python -m chat ask --conversation`` pass
what the user read), so the paper is recognised by the sentences that cite source 1: the abstract that has
nearly all the words of one of them, and most of the others'.

>>> from ingest.records import make_paper
>>> flan = make_paper(title="FLAN", abstract="Instruction tuning a 137B model on over 60 NLP datasets helps.")
>>> bezoar = make_paper(title="OpenBezoar", abstract="We use three instruction tuning datasets.")
>>> previous = "Instruction tuning a 137B model on over 60 NLP datasets helps [1]."
>>> cited_first(previous, [bezoar, flan])
1
>>> holds("on 60 NLP datasets?", "instruction tuning", flan, {}), holds("on TPUs?", "instruction tuning", flan, {})
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from chat.abstain import AbstainConfig, Evidence, decide
from chat.citations import parse_markers, strip_markers
from chat.evidence import Rarity, coverage, key, units
from chat.naming import naming
from chat.rewrite import conversation_state
from chat.sentences import content_words, split_sentences
from chat.subject import names
from ingest.records import Paper

T = TypeVar("T")

# Share of the cited sentence's content words one abstract must hold. Quoted sentences hold all of them;
# a model's paraphrase of one sentence keeps most; 0.7 leaves out papers that only share the topic.
MIN_SHARED = 0.7
# Rarity (BM25 idf) the words a follow-up adds must sum to before they can settle the gate: one rare
# word ("GSM8K" 4.8, "bfloat16" 4.8) does; "model" (0.0), "tasks" (0.6) or "datasets" (1.0) alone do not.
MIN_ADDED = 2.5


def cited_sentences(answer: str) -> list[str]:
    """The sentences of ``answer`` that cite source 1, without markers.

    >>> cited_sentences("Quoted from the abstracts:\\n\\nQLoRA saves memory [1]. It is fast [2]. It uses NF4 [1].")
    ['QLoRA saves memory.', 'It uses NF4.']
    >>> cited_sentences("QLoRA saves memory. [1] It is fast [2].")
    ['QLoRA saves memory.']
    """
    found, before = [], ""
    for sentence in (s for line in answer.splitlines() for s in split_sentences(line)):  # a label is its own line
        marker = next((m for m in parse_markers(sentence) if 1 in m.numbers), None)
        if marker is not None:  # "… memory. [1] It is …": a marker opening a sentence cites the one before
            found.append(strip_markers(before if marker.start == 0 and before else sentence))
        before = sentence
    return found


def cited_first(answer: str, papers: Sequence[Paper]) -> int | None:
    """Index of the paper in ``papers`` that the previous ``answer`` cited first, or None when none is
    recognised (an abstention, paraphrases too loose, a paper no longer retrieved). Each sentence citing it
    votes with the share of its words each abstract has; the winner must hold one of them nearly whole,
    since a model's own opening ("Yes, instruction tuning helps on unseen tasks [1].") fits many papers."""
    vocabularies = [set(content_words(f"{p.title} {p.abstract}")) for p in papers]
    votes, holds_one = [0.0] * len(papers), [False] * len(papers)
    for sentence in cited_sentences(answer):
        wanted = set(content_words(sentence))
        if len(wanted) < 3:  # too few words to tell one paper from another
            continue
        for i, vocabulary in enumerate(vocabularies):
            share = len(wanted & vocabulary) / len(wanted)
            votes[i] += share
            holds_one[i] = holds_one[i] or share >= MIN_SHARED
    best = max(range(len(papers)), key=lambda i: votes[i], default=None)
    if best is None or not holds_one[best] or votes.count(votes[best]) > 1:
        return None
    return best


def holds(question: str, subject: str, paper: Paper, weight: Mapping[str, float]) -> bool:
    """Whether ``paper`` has every word ``question`` adds to ``subject``, and those words weigh ``MIN_ADDED``."""
    carried = {part for unit in units(subject) for part in unit}
    added = [u for u in units(question) if not set(u) <= carried]
    if sum(weight.get(key(u), 1.0) for u in added) < MIN_ADDED:
        return False
    return coverage(added, f"{paper.title} {paper.abstract}", weight) == 1.0


def continue_reading(question: str, history: Sequence[tuple[str, str]], items: Sequence[T], evidence: Evidence,
                     rarity: Rarity | None = None, config: AbstainConfig = AbstainConfig(),
                     paper: Callable[[T], Paper] = lambda item: item) -> tuple[list[T], Evidence]:
    """``items`` with the paper the conversation is reading first, and the gate's ``evidence``, raised to
    its threshold when that paper holds what the follow-up ``question`` adds (words weighed by ``rarity``,
    ``chat.abstain.rarity_of``). Unchanged when no paper is being read, when the follow-up names something
    that paper does not, or when the gate still abstains."""
    subject = conversation_state(history)[0].text if history else ""
    papers = [paper(item) for item in items]
    cited = next((answer for _, answer in reversed(history) if cited_sentences(answer)), "")  # not an abstention
    found = cited_first(cited, papers) if subject else None
    if found is None or not naming(subject, [papers[found]])[0]:
        return list(items), evidence
    reading = papers[found]
    if any(not naming(name, [reading])[0] for name in names(question)):
        return list(items), evidence
    weight = dict(rarity([key(u) for u in units(question)])) if rarity is not None else {}
    if decide(evidence, config) and holds(question, subject, reading, weight):
        evidence = replace(evidence, support=max(evidence.support, config.threshold))
    if decide(evidence, config):
        return list(items), evidence  # abstaining: the nearest papers keep retrieval order
    return [items[found], *items[:found], *items[found + 1:]], evidence
