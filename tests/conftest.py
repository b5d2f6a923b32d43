"""Shared, expensive fixtures: the real embedding model is loaded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEEDS = ROOT / "data" / "samples"
TINY_GGUF = SHARED / "models" / "stories260K.gguf"



@pytest.fixture(scope="session")
def embedder():
    from models.embedder import Embedder, EmbedderConfig

    return Embedder(EmbedderConfig())


@pytest.fixture(scope="session")
def seed_ingest(embedder, tmp_path_factory):
    """The sample papers (data/samples) ingested once per session: ``.config`` and ``.report``.

    Shared by many tests: treat the index as read-only (re-ingesting the same samples,
    which must change nothing, is the one write allowed).
    """
    from types import SimpleNamespace

    from ingest.pipeline import ingest
    from ingest.store import Store, StoreConfig

    config = StoreConfig(path=str(tmp_path_factory.mktemp("seed_index")))
    store = Store.open(config, embedder.name, embedder.dim)
    return SimpleNamespace(config=config, report=ingest([str(SEEDS)], store, embedder))


@pytest.fixture(scope="session")
def seed_index(seed_ingest):
    """StoreConfig of an index holding the sample papers (see ``seed_ingest``); read-only."""
    return seed_ingest.config
