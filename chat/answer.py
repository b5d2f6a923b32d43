"""The answer path: rewrite → retrieve → abstain? → extract → generate → attach and check citations.

``Answerer.stream`` yields, in order: one :class:`Draft` as soon as retrieval ends (the
sources and the extractive answer, or the abstention: something to show at once); then,
with a model, the model's raw text pieces as they are produced; then the final, checked
:class:`Answer`. Its ``answer`` is the text to show: citations attached by code
(chat/attribute.py), so it may differ from the streamed raw text. When the model refuses
or writes nothing the sources support, the final Answer is the extractive one, with a
note saying why: "not covered" is decided by the evidence gate alone. ``ask`` returns
only the Answer.

>>> from ingest.records import make_paper
>>> from chat.retrieve import Hit
>>> class OnePaper:  # any object with the Retriever's search() works
...     paper = make_paper(raw_id="2305.14314", title="QLoRA", abstract=(
...         "QLoRA reduces memory usage enough to finetune a 65B model on a single 48GB GPU. "
...         "It introduces 4-bit NormalFloat."))
...     def search(self, query, k=5, filters=None, mode="hybrid"):
...         return [Hit(self.paper, 0.9, 0.72, 0.8, (self.paper.abstract,), 1)]
>>> answer = Answerer(OnePaper(), llm=None).ask("How does QLoRA reduce memory usage?")
>>> answer.mode, answer.abstained, [c.paper_id for c in answer.citations]
('extractive', False, ['2305.14314'])
>>> [type(event).__name__ for event in Answerer(OnePaper(), llm=None).stream("How does QLoRA save memory?")]
['Draft', 'Answer']
>>> answer.to_json()["citations"][0]["url"]
'https://arxiv.org/abs/2305.14314'
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from chat.abstain import AbstainConfig, Evidence, abstention_text, decide, measure, rarity_of
from chat.attribute import CheckConfig, CheckedText, SentenceCheck, check_citations
from chat.citations import strip_markers
from chat.continuity import continue_reading
from chat.contradictions import numbers
from chat.extractive import LABEL, ExtractiveConfig, extractive_answer
from chat.naming import named_first
from chat.prompt import PromptConfig, build_prompt, fixed_prefix
from chat.refusal import is_refusal
from chat.rewrite import RewriteConfig, rewrite
from chat.sentences import SentenceVectors, display_title, split_sentences
from ingest.records import Paper
from ingest.untrusted import normalise_question

KEY_QUOTE_LABEL = "From the abstract:"  # before the best quoted sentences the model's answer lacks
# Why the model's text was replaced by the extractive answer (one line, shown with the answer).
FALLBACK_NOTES = {
    "refused": "The model said the sources do not answer, but they do: showing the quoted answer instead.",
    "unsupported": "The model's answer was not supported by the sources: showing the quoted answer instead.",
    "empty": "The model wrote no answer: showing the quoted answer instead.",
    "echo": "The model only restated the question: showing the quoted answer instead.",
}


@dataclass(frozen=True)
class AnswerConfig:
    """Everything that shapes an answer; each part's defaults live next to its code."""

    k: int = 5
    mode: str = "hybrid"  # retrieval mode: "hybrid", "dense" or "bm25"
    prompt: PromptConfig = PromptConfig()
    extractive: ExtractiveConfig = ExtractiveConfig()
    abstain: AbstainConfig = AbstainConfig()
    check: CheckConfig = CheckConfig()
    rewrite: RewriteConfig = RewriteConfig()
    # A model's answer that does not already say what one of the best quoted sentences says (cosine below this with
    # each of its sentences) is followed by that sentence, labelled: small models often answer from a weaker one.
    key_quote_cosine: float | None = 0.8
    key_quotes: int = 2  # the extractive answer's best sentences considered for it, best first
    # The model starting to echo the prompt's structure has stopped answering.
    stop: tuple[str, ...] = ("<source", "</source>", "\nQuestion:", "\nSources:", "<sources", "</sources>")


@dataclass(frozen=True)
class Citation:
    n: int
    paper_id: str
    title: str
    url: str
    supporting_sentence: str
    supported: bool


@dataclass(frozen=True)
class Source:
    paper_id: str
    title: str
    score: float
    paper: Paper


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    mode: str  # "llm" | "extractive"
    abstained: bool
    citations: tuple[Citation, ...]
    sources: tuple[Source, ...]
    timings: dict[str, float]
    model: str
    standalone_query: str
    prompt_tokens: int
    removed_markers: int  # citation numbers the model wrote that map to no source (removed)
    unsupported: int  # sentences flagged: cited but not supported, plus (llm mode) claims citing nothing
    retrieved: tuple = ()  # the Hits, best first
    markers_total: int = 0  # citation numbers in the raw text, before repair
    checks: tuple[SentenceCheck, ...] = ()
    evidence: Evidence | None = None
    prompt_tokens_saved: int = 0  # versus whole abstracts of every retrieved paper
    raw: str = ""  # the model's text before the checker (empty in extractive mode)
    messages: tuple[dict[str, str], ...] = ()  # the prompt the model saw (llm mode)
    notes: tuple[str, ...] = field(default=())  # one-line notes shown with the answer (e.g. why it is extractive)
    fallback: str = ""  # why the model's text was replaced by the extractive answer: a FALLBACK_NOTES key
    shown: tuple[str, ...] = ()  # paper ids of the sources in the model's prompt, numbered from 1 (llm mode)
    filters: object = None  # the chat.retrieve.Filters the search ran under (None: every paper); .describe() says which

    def to_json(self) -> dict:
        """The command line's JSON shape: the issue-3 keys, then model, checks and notes."""
        return {
            "question": self.question, "answer": self.answer, "mode": self.mode, "abstained": self.abstained,
            "citations": [{"n": c.n, "paper_id": c.paper_id, "title": c.title, "url": c.url,
                           "supporting_sentence": c.supporting_sentence} for c in self.citations],
            "sources": [{"paper_id": s.paper_id, "title": s.title, "score": round(s.score, 4)} for s in self.sources],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "model": self.model or None,
            "checks": [c.to_json() for c in self.checks],
            "notes": list(self.notes),
            "standalone_query": self.standalone_query,
        }


@dataclass(frozen=True)
class Draft:
    """What can be shown as soon as retrieval ends: the extractive (or abstained) answer and its sources.

    ``final`` is True when nothing follows it but the same Answer (no model, or abstained).
    """

    answer: Answer
    final: bool


class Answerer:
    """Answers questions over a retriever, with ``llm`` (models.llm.LocalLLM) or extractively when it is None."""

    def __init__(self, retriever, llm=None, config: AnswerConfig = AnswerConfig(), embedder=None,
                 notes: Sequence[str] = ()):
        self.retriever, self.llm, self.config = retriever, llm, config
        embedder = embedder if embedder is not None else getattr(retriever, "embedder", None)
        self.vectors = SentenceVectors(embedder) if embedder is not None else None
        self.notes = tuple(notes)  # shown once by the caller, e.g. why no model is loaded
        self._count = llm.count_messages if llm is not None else None
        if llm is not None and hasattr(llm, "keep_prefix"):
            llm.keep_prefix(fixed_prefix(config.prompt))  # every prompt opens with it: processed once, kept

    @property
    def mode(self) -> str:
        return "llm" if self.llm is not None else "extractive"

    def ask(self, question: str, history: Sequence[tuple[str, str]] = (), k: int | None = None,
            filters=None) -> Answer:
        result = None
        for item in self.stream(question, history, k, filters):
            result = item
        return result

    def stream(self, question: str, history: Sequence[tuple[str, str]] = (), k: int | None = None,
               filters=None) -> Iterator["Draft | str | Answer"]:
        """A :class:`Draft`, then (with a model) text pieces, then the final :class:`Answer`.

        ValueError for an empty question or one over 2,000 characters.
        """
        question = normalise_question(question)  # NFKC; no chat-template tokens or terminal codes; length cap
        clock = _Clock()
        standalone = rewrite(question, history, self.llm, self.config.rewrite)
        clock.lap("rewrite")
        hits = list(self.retriever.search(standalone, k=k or self.config.k, filters=filters, mode=self.config.mode))
        clock.lap("retrieve")
        rarity = rarity_of(self.retriever)
        evidence = measure(standalone, [(h.paper, h.dense) for h in hits], self.config.abstain, rarity, self.vectors)
        if history and standalone != question:  # a follow-up: the paper the conversation is reading comes first
            hits, evidence = continue_reading(question, history, hits, evidence, rarity, self.config.abstain,
                                              paper=lambda h: h.paper)
        if not decide(evidence, self.config.abstain):  # the gate and the nearest papers keep retrieval order
            hits = named_first(standalone, hits, paper=lambda h: h.paper)
        base = dict(question=question, standalone_query=standalone, retrieved=tuple(hits), evidence=evidence,
                    filters=filters,
                    sources=tuple(Source(h.paper.paper_id, _title(h.paper), float(h.score), h.paper) for h in hits))
        if not hits or decide(evidence, self.config.abstain):
            answer = self._abstain(base, clock)
            yield Draft(answer, final=True)
        else:
            answer, best = self._extract(base, clock)
            yield Draft(answer, final=self.llm is None)
            if self.llm is not None:
                answer = yield from self._generate(base, history, clock, answer, best)
        yield answer

    def _abstain(self, base: dict, clock: "_Clock") -> Answer:
        papers = [h.paper for h in base["retrieved"]]
        count = getattr(self.retriever, "matching", None)  # tells "nothing passes the filters" from "not covered"
        filters = base.get("filters")
        text = abstention_text(papers, self.config.abstain, filters,
                               matching=count(filters) if count and filters else None,
                               indexed=count(None) if count and not papers else None)
        return Answer(answer=text, mode=self.mode, abstained=True, citations=(), timings=clock.done(),
                      model="", prompt_tokens=0, removed_markers=0, unsupported=0, **base)

    def _extract(self, base: dict, clock: "_Clock") -> tuple[Answer, tuple[str, str] | None]:
        """The extractive answer, and its best sentences with their paper ids (best first; empty when it quotes none)."""
        papers = [h.paper for h in base["retrieved"]]
        extract = extractive_answer(base["standalone_query"], papers, self.vectors, self.config.extractive)
        clock.lap("extract")
        chosen = [papers[i] for i in extract.order]
        body = extract.text[len(LABEL):].strip()
        checked = check_citations(body, [p.abstract for p in chosen], self.vectors, self.config.check,
                                  titles=[_title(p) for p in chosen])
        clock.lap("check")
        best = tuple((p.sentence, papers[p.paper].paper_id) for p in extract.picks[:self.config.key_quotes])
        return self._finish(base, f"{LABEL}\n\n{checked.text}", checked, chosen, clock, mode="extractive"), best

    def _generate(self, base: dict, history, clock: "_Clock", extracted: Answer, best: Sequence[tuple[str, str]]):
        """Stream the model's answer, attach its citations; the extractive answer when it is not usable."""
        papers = [h.paper for h in base["retrieved"]]
        prompt = build_prompt(base["question"], papers, history, self.llm.n_ctx, self._count, self.config.prompt,
                              self.vectors, standalone=base["standalone_query"], count_text=self.llm.count_tokens)
        clock.lap("prompt")
        pieces: list[str] = []
        for piece in self.llm.stream(list(prompt.messages), max_tokens=self.config.prompt.answer_tokens,
                                     stop=list(self.config.stop)):
            if not pieces:
                clock.mark("first_token")
            pieces.append(piece)
            yield piece
        clock.lap("generate")
        raw = "".join(pieces).strip()
        shown = [papers[i] for i in prompt.sources]
        sources = dict(abstracts=[p.abstract for p in shown], vectors=self.vectors, config=self.config.check,
                       titles=[_title(p) for p in shown], question=base["standalone_query"])
        checked = check_citations(raw, **sources)  # the model's own text decides whether it is usable
        quote = self._key_quote(raw, checked, best, shown) if checked.usable else ""
        if quote:
            checked = check_citations(raw + quote, **sources)
        clock.lap("check")
        extra = dict(prompt_tokens=prompt.tokens, prompt_tokens_saved=prompt.saved, raw=raw, messages=prompt.messages,
                     shown=tuple(p.paper_id for p in shown),
                     model=self._model_name(), markers_total=checked.total, removed_markers=checked.removed)
        if checked.usable:
            text = checked.text
            if quote and "\n\n" in text:  # the quote is the last paragraph: labelled as a quotation
                said, quoted = text.rsplit("\n\n", 1)
                text = f"{said}\n\n{KEY_QUOTE_LABEL} {quoted}"
            return self._finish(base, text, checked, shown, clock, mode="llm", **extra)
        reason = "empty" if not checked.sentences and not checked.refusals and not checked.restated else (
            "refused" if checked.refusals and not any(c.supported for c in checked.sentences) else
            "echo" if checked.echoes_only or (checked.restated and not checked.sentences) else "unsupported")
        extra.update(fallback=reason, notes=(FALLBACK_NOTES[reason],), timings=clock.done())
        return replace(extracted, **extra)

    def _key_quote(self, raw: str, checked: CheckedText, best: Sequence[tuple[str, str]], shown: Sequence[Paper]
                   ) -> str:
        """Of ``best`` (the extractive answer's best sentences and their papers), those the model's answer does
        not already say, as a last paragraph, each with the marker of its paper among ``shown`` ('' for none).
        Only the model's supported sentences say anything, and one says a quote only with all its numbers:
        "achieves state-of-the-art on five-shot MMLU" does not say "… such as 75.2% on five-shot MMLU"."""
        limit, markers = self.config.key_quote_cosine, {p.paper_id: n for n, p in enumerate(shown, 1)}
        said = [strip_markers(c.text) for c in checked.sentences if c.supported]
        quotes = [(sentence, markers[pid]) for sentence, pid in best if pid in markers]
        if limit is None or not quotes or self.vectors is None or is_refusal(raw):
            return ""
        matrix = self.vectors([*(q for q, _ in quotes), *said]) if said else None
        missing = []
        for i, (quote, n) in enumerate(quotes):
            wanted = set(numbers(quote))
            close = [] if matrix is None else [s for s, v in zip(said, matrix[len(quotes):])
                                               if float(v @ matrix[i]) >= limit]
            if not any(wanted <= set(numbers(s)) for s in close):
                missing.append(f"{quote} [{n}]")
        return "\n\n" + " ".join(missing) if missing else ""

    def _finish(self, base: dict, text: str, checked: CheckedText, papers: list[Paper], clock: "_Clock",
                mode: str, **extra) -> Answer:
        citations = tuple(
            Citation(n, paper.paper_id, _title(paper), paper.url, checked.supporting.get(n, ""),
                     checked.supported.get(n, False))
            for n, paper in ((n, papers[old - 1]) for n, old in enumerate(checked.order, start=1)))
        extra.setdefault("model", "")
        extra.setdefault("removed_markers", checked.removed)
        extra.setdefault("markers_total", checked.total)
        return Answer(answer=text, mode=mode, abstained=False, citations=citations, timings=clock.done(),
                      prompt_tokens=extra.pop("prompt_tokens", 0), unsupported=checked.unsupported,
                      checks=checked.sentences, **base, **extra)

    def _model_name(self) -> str:
        return self.llm.name if self.llm is not None else ""


def _title(paper: Paper) -> str:
    return display_title(paper.title, paper.abstract, paper.paper_id)


class _Clock:
    """Seconds per stage, plus ``total``."""

    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now

    def mark(self, name: str) -> None:
        self.timings[name] = time.perf_counter() - self.start

    def done(self) -> dict[str, float]:
        return {**self.timings, "total": time.perf_counter() - self.start}
