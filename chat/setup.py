"""``open_answerer``: the one builder of an Answerer, shared by ``python -m chat``, ``app.py`` and benchmarks.

It opens the index with the embedding model the index was built with, the retriever
beside it, and the language model when one is named. A model that cannot be had
(offline and not cached, file missing, not loadable) does not stop anything: the
answerer answers extractively and ``answerer.notes`` says why.

>>> import tempfile
>>> answerer = open_answerer(StoreConfig(path=tempfile.mkdtemp()), model_spec="missing.gguf")
>>> answerer.mode, answerer.notes[0].startswith("Model file not found: missing.gguf")
('extractive', True)
"""

from __future__ import annotations

import os
from dataclasses import replace

from chat.answer import AnswerConfig, Answerer
from chat.retrieve import RetrievalConfig, Retriever
from ingest.store import Store, StoreConfig
from models.embedder import Embedder, EmbedderConfig
from models.errors import PaperChatError, UnavailableError
from models.llm import NO_MODEL, LLMConfig, LocalLLM, Progress


def open_answerer(store_config: StoreConfig, embedder_config: EmbedderConfig | None = None,
                  model_spec: str | None = None, *, llm_config: LLMConfig = LLMConfig(),
                  answer_config: AnswerConfig = AnswerConfig(), retrieval_config: RetrievalConfig = RetrievalConfig(),
                  progress: Progress | None = None, require_model: bool = False,
                  must_exist: bool = False, device: str = "auto") -> Answerer:
    """An Answerer over the index at ``store_config``.

    ``embedder_config`` None means the model the index was built with (the default model for a
    new index). ``model_spec`` None or "none" means extractive answers. With ``require_model``
    a model that cannot be loaded raises UnavailableError instead of falling back; with
    ``must_exist`` a missing local index is a PaperChatError instead of a new empty one.
    """
    if must_exist and not store_config.host and not os.path.isdir(store_config.path):
        raise PaperChatError(f"No index at {store_config.path}. Build one first: python -m ingest SOURCES --index "
                             f"{store_config.path}")
    if embedder_config is None:
        meta = Store.read_meta(store_config)
        embedder_config = EmbedderConfig(model=meta.model, device=device) if meta and meta.model \
            else EmbedderConfig(device=device)
    embedder = Embedder(embedder_config)
    store = Store.open(store_config, embedder.name, embedder.dim)
    retriever = Retriever(store, embedder, retrieval_config)
    llm, notes = None, []
    if model_spec is not None and model_spec.strip().lower() not in NO_MODEL:
        try:
            llm = LocalLLM(replace(llm_config, model=model_spec.strip()), progress)
        except UnavailableError as exc:
            if require_model:
                raise
            notes.append(f"{exc} Answering extractively (no language model).")
    return Answerer(retriever, llm, answer_config, embedder=embedder, notes=notes)
