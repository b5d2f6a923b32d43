"""Shared, expensive fixtures: the real embedding model is loaded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEEDS = ROOT / "data" / "samples"
TINY_GGUF = SHARED / "models" / "stories260K.gguf"

os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(SHARED / "tiktoken"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture(scope="session")
def embedder():
    from models.embedder import Embedder, EmbedderConfig

    return Embedder(EmbedderConfig())
