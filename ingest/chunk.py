"""Split a paper into chunks that fit the embedding model's window.

Budgets are counted with tiktoken (fast, offline) but derive from the embedding
model's own window (``Embedder.max_tokens``, in its word pieces): one tiktoken
token costs at most ``pieces_per_token`` word pieces, so a chunk of
``budget(window)`` tiktoken tokens is never truncated by the model. Title and
abstract form one chunk when they fit; a longer abstract is split at sentence
boundaries (a sentence longer than a chunk at word boundaries), consecutive
chunks share their boundary sentence (more while within ``overlap`` of a window),
and every chunk starts with the title.

>>> from ingest.records import make_paper
>>> p = make_paper(raw_id="2305.14314", title="QLoRA", abstract="We finetune in 4 bits. It works.")
>>> [(c.chunk_id, c.n_chunks, c.text) for c in chunk_paper(p)]
[('2305.14314#0', 1, 'QLoRA\\nWe finetune in 4 bits. It works.')]
>>> long = make_paper(title="T", abstract=" ".join(f"Sentence {i} is here." for i in range(200)))
>>> chunks = chunk_paper(long, ChunkerConfig(), window_tokens=64)
>>> len(chunks) > 10, chunks[1].text.startswith("T\\n"), all(c.n_chunks == len(chunks) for c in chunks)
(True, True, True)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingest.records import Paper
from ingest.store import Chunk
from models.tokens import get_encoding as _encoding

MINILM_WINDOW = 256  # all-MiniLM-L6-v2's max_seq_length: the default when no embedder is at hand
CHUNKER_VERSION = 2  # bump when the cutting itself changes (2: half-window chunks, titles up to half a chunk)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
# A split after these is not a sentence end ("e.g. 33B", "Smith et al. 2020").
_ABBREVIATIONS = re.compile(r"(?:\b(?:e\.g|i\.e|et al|etc|vs|cf|Fig|Figs|Eq|Eqs|Sec|No|approx|resp)\.|\b[A-Z]\.)$")


@dataclass(frozen=True)
class ChunkerConfig:
    """How chunks are cut. Window and overlap derive from the model's window.

    ``pieces_per_token``: how many of the embedding model's word pieces one cl100k
    token can turn into. Measured with :func:`measure_pieces_per_token` on 11,864
    spans of 120+ tokens from the SciFact, PubMedQA and seed abstracts with MiniLM's
    tokenizer: median 1.04, 99th percentile 1.17, 99.9th 1.22, maximum 1.28. 1.3 is
    above every measured span, so a chunk is never cut off by the model (MiniLM:
    (256 × 0.5 - 2) / 1.3 = 96 tiktoken tokens per chunk with ``window_share`` below).
    ``special_tokens``: the model adds [CLS] and [SEP] inside its window.
    ``overlap``: fraction of a chunk repeated at the start of the next one (at least
    the boundary sentence), so a statement cut at a chunk edge is whole in one of them.
    ``window_share``: the share of the model's window a chunk may fill. all-MiniLM-L6-v2
    reads 256 pieces but was trained on pairs cut at 128, and it matches a claim to the
    right abstract better when chunks stay within that: half-window chunks raise hybrid
    nDCG@10 on the SciFact training split from 0.7495 to 0.754 (benchmarks/RESULTS.md).
    """

    encoding: str = "cl100k_base"
    pieces_per_token: float = 1.3
    special_tokens: int = 2
    overlap: float = 0.15
    window_share: float = 0.5

    def __post_init__(self) -> None:
        if self.pieces_per_token <= 0 or not 0 <= self.overlap < 0.5 or self.special_tokens < 0 \
                or not 0 < self.window_share <= 1:
            raise ValueError("pieces_per_token must be > 0, overlap in [0, 0.5), special_tokens >= 0, "
                             "window_share in (0, 1]")

    def budget(self, window_tokens: int) -> int:
        """tiktoken tokens per chunk (title included) for a model window of ``window_tokens`` pieces."""
        budget = int((window_tokens * self.window_share - self.special_tokens) / self.pieces_per_token)
        if budget < 16:
            raise ValueError(f"an embedding window of {window_tokens} tokens is too small to chunk into")
        return budget

    def overlap_tokens(self, window_tokens: int) -> int:
        return int(self.budget(window_tokens) * self.overlap)

    def fingerprint(self, window_tokens: int) -> str:
        """What decides the chunks of a paper, as recorded in the index (a change calls for a re-chunk).

        >>> ChunkerConfig().fingerprint(256)
        'v2 cl100k_base window=256x0.5 pieces/token=1.3 special=2 overlap=0.15'
        """
        return (f"v{CHUNKER_VERSION} {self.encoding} window={window_tokens}x{self.window_share:g} "
                f"pieces/token={self.pieces_per_token:g} special={self.special_tokens} overlap={self.overlap:g}")


def chunk_paper(paper: Paper, config: ChunkerConfig = ChunkerConfig(), window_tokens: int = MINILM_WINDOW) -> list[Chunk]:
    """The chunks of ``paper`` for a model whose window is ``window_tokens`` of its own tokens."""
    encoding = _encoding(config.encoding)
    budget = config.budget(window_tokens)
    prefix = f"{paper.title}\n" if paper.title else ""
    whole = prefix + paper.abstract
    if len(encoding.encode_ordinary(whole)) <= budget:
        return [Chunk(paper.paper_id, 0, 1, whole)]
    title_tokens = encoding.encode_ordinary(prefix)
    if len(title_tokens) > budget // 2:  # a runaway title must leave room for the abstract
        prefix = encoding.decode(title_tokens[:budget // 2]).strip() + "\n"
        title_tokens = encoding.encode_ordinary(prefix)
    body = budget - len(title_tokens)
    overlap = min(config.overlap_tokens(window_tokens), body // 2)
    pieces = _pieces(paper.abstract, body, encoding)
    bodies = _pack(pieces, body, overlap)
    return [Chunk(paper.paper_id, i, len(bodies), prefix + text) for i, text in enumerate(bodies)]


def split_sentences(text: str) -> list[str]:
    """``split_sentences("A b. C d, e.g. this. G?")`` -> ['A b.', 'C d, e.g. this.', 'G?']"""
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start:match.end()].rstrip()
        if _ABBREVIATIONS.search(candidate.rstrip("\"')]")):
            continue
        parts.append(candidate)
        start = match.end()
    tail = text[start:].strip()
    return [p for p in parts + [tail] if p]


def measure_pieces_per_token(texts: Iterable[str], count_pieces: Callable[[str], int],
                             config: ChunkerConfig = ChunkerConfig(), span_tokens: int = 120) -> list[float]:
    """Word pieces per tiktoken token of chunk-sized spans (whole sentences, ``span_tokens`` or more).

    ``count_pieces`` counts the embedding model's tokens without special tokens; the
    maximum of the result, rounded up, is a safe ``pieces_per_token``.
    """
    encoding = _encoding(config.encoding)
    ratios: list[float] = []
    for text in texts:
        span: list[str] = []
        for sentence in split_sentences(text):
            span.append(sentence)
            tokens = len(encoding.encode_ordinary(" ".join(span)))
            if tokens >= span_tokens:
                ratios.append(count_pieces(" ".join(span)) / tokens)
                span = []
    return ratios


def _pieces(text: str, limit: int, encoding) -> list[tuple[str, int]]:
    """Sentences with their token counts; sentences over ``limit`` are cut at word boundaries."""
    sentences = split_sentences(text)
    # A leading space is how a sentence is tokenised after its predecessor, so counts add up.
    # (encode_ordinary_batch would start a thread pool per call: far slower for a few sentences.)
    counts = [len(encoding.encode_ordinary(" " + s)) for s in sentences]
    pieces: list[tuple[str, int]] = []
    for sentence, count in zip(sentences, counts):
        pieces.extend([(sentence, count)] if count <= limit else _split_words(sentence, limit, encoding))
    return pieces


def _split_words(sentence: str, limit: int, encoding) -> list[tuple[str, int]]:
    words = sentence.split()
    counts = [len(encoding.encode_ordinary(" " + w)) for w in words]
    units: list[tuple[str, int]] = []
    for word, count in zip(words, counts):
        if count <= limit:
            units.append((word, count))
        else:  # one "word" longer than a chunk (a URL, a sequence): cut it by tokens
            tokens = encoding.encode_ordinary(word)
            units.extend((encoding.decode(tokens[i:i + limit]), len(tokens[i:i + limit]))
                         for i in range(0, len(tokens), limit))
    return _pack_units(units, limit)


def _pack_units(units: list[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """Greedy: consecutive units joined with spaces while their tokens fit ``limit``."""
    packed: list[tuple[str, int]] = []
    words: list[str] = []
    used = 0
    for word, count in units:
        if words and used + count > limit:
            packed.append((" ".join(words), used))
            words, used = [], 0
        words.append(word)
        used += count
    if words:
        packed.append((" ".join(words), used))
    return packed


def _pack(pieces: list[tuple[str, int]], limit: int, overlap: int) -> list[str]:
    """Greedy windows of whole pieces; each next window re-starts with the previous one's last
    sentence(s): up to ``overlap`` tokens, and at least one sentence of at most half a window."""
    bodies: list[str] = []
    start = 0
    while start < len(pieces):
        end, used = start, 0
        while end < len(pieces) and (end == start or used + pieces[end][1] <= limit):
            used += pieces[end][1]
            end += 1
        bodies.append(" ".join(text for text, _ in pieces[start:end]))
        if end == len(pieces):
            break
        back, shared = end, 0
        while back - 1 > start:
            cost = pieces[back - 1][1]
            # The last sentence is repeated even when it alone exceeds ``overlap`` (up to half a
            # chunk): typical sentences are longer than 15% of a window, and overlap is the point.
            if shared + cost > overlap and not (back == end and cost <= limit // 2):
                break
            back -= 1
            shared += cost
        start = back
    return bodies
