"""The embedder: the fast bf16 backend agrees with fp32, is built locally and cached, keeps row order."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from models import fast_encoder
from models.embedder import DEFAULT_MODEL, Embedder, EmbedderConfig, length_batches, packaged_path
from tests.conftest import SHARED

SCIFACT = SHARED / "data" / "scifact"
FIDELITY = 0.999  # measured on 2,000 SciFact abstracts: mean 0.99995, min 0.9999 (benchmarks/RESULTS.md)


def _scifact(n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` training claims with a judged abstract, and those abstracts."""
    corpus = {}
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            corpus[row["_id"]] = f"{row['title']}\n{row['text']}"
    claims = {}
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            claims[row["_id"]] = row["text"]
    pairs = []
    with open(SCIFACT / "qrels" / "train.tsv", encoding="utf-8") as fh:
        for line in list(fh)[1:]:
            qid, doc, _ = line.split("\t")
            if doc in corpus and qid in claims and corpus[doc] not in (d for _, d in pairs):
                pairs.append((claims[qid], corpus[doc]))
            if len(pairs) == n:
                break
    return [c for c, _ in pairs], [d for _, d in pairs]


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    return Embedder(EmbedderConfig(backend="bf16", cache_dir=str(tmp_path_factory.mktemp("encoders"))))


@pytest.fixture(scope="module")
def fp32():
    return Embedder(EmbedderConfig(backend="torch"))


@pytest.fixture(scope="module")
def scifact():
    return _scifact(40)


def test_fast_backend_agrees_with_fp32_on_real_abstracts(fast, fp32, scifact):
    _, abstracts = scifact
    a, b = fast.embed(abstracts), fp32.embed(abstracts)
    cosines = (a * b).sum(axis=1)
    assert fast.backend == "bf16" and fp32.backend == "torch"
    assert a.dtype == np.float32 and np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    assert cosines.min() >= FIDELITY, cosines.min()


def test_fast_backend_finds_the_same_nearest_abstract(fast, fp32, scifact):
    claims, abstracts = scifact
    top = [np.argmax(e.embed(abstracts) @ e.embed(claims).T, axis=0) for e in (fast, fp32)]
    assert (top[0] == top[1]).all()
    assert (top[1] == np.arange(len(claims))).mean() > 0.5  # the yardstick itself retrieves


@pytest.mark.parametrize("text", ["QLoRA finetunes a 65B model on one GPU.", "Cats purr.", "x" * 3000])
def test_fast_backend_matches_fp32_api(fast, fp32, text):
    assert (fast.name, fast.dim, fast.max_tokens) == (fp32.name, fp32.dim, fp32.max_tokens) == (DEFAULT_MODEL, 384, 256)
    assert fast.count_tokens(text) == fp32.count_tokens(text)
    assert float(fast.embed_query(text) @ fp32.embed_query(text)) >= FIDELITY


def test_rows_come_back_in_input_order(fast, scifact):
    _, abstracts = scifact
    texts = [t[:n] for t, n in zip(abstracts[:12], [30, 900, 60, 2000, 5, 400, 1500, 90, 700, 20, 3000, 250])]
    together = Embedder(EmbedderConfig(backend="bf16", cache_dir=fast.config.cache_dir, max_batch_tokens=600))
    batched = together.embed(texts)
    one_by_one = np.stack([fast.embed([t])[0] for t in texts])
    assert np.allclose(batched, one_by_one, atol=2e-3)
    assert fast.embed([]).shape == (0, 384)


@pytest.mark.parametrize("lengths,budget", [([5, 1, 4, 2], 8), ([256] * 9 + [3], 1024), ([7], 1), (list(range(50, 0, -1)), 200)])
def test_length_batches_cover_every_row_within_budget(lengths, budget):
    batches = length_batches(lengths, budget)
    assert sorted(i for b in batches for i in b.tolist()) == list(range(len(lengths)))
    for b in batches:
        width = max(lengths[i] for i in b)
        assert len(b) == 1 or len(b) * width <= budget


def test_encoder_is_built_locally_then_reused_from_its_cache(tmp_path):
    source = packaged_path(DEFAULT_MODEL)
    first = fast_encoder.load_encoder(source, str(tmp_path))
    folder = tmp_path / fast_encoder.cache_key(source)
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    second = fast_encoder.load_encoder(source, str(tmp_path))
    assert (first.from_cache, second.from_cache) == (False, True)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written == {
        "encoder.pt": written["encoder.pt"], "meta.json": written["meta.json"]}
    assert json.loads((folder / "meta.json").read_text())["source"] == os.path.realpath(source)
    ids, mask = np.array([[101, 7592, 102]]), np.ones((1, 3), dtype=np.int64)
    assert np.array_equal(first.encode(ids, mask), second.encode(ids, mask))
    embedder = Embedder(EmbedderConfig(backend="bf16", cache_dir=str(tmp_path)))
    assert embedder._encoder.from_cache


def test_cache_key_follows_the_source_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    before = fast_encoder.cache_key(str(model))
    assert fast_encoder.cache_key(str(model)) == before
    (model / "config.json").write_text('{"changed": true}')
    assert fast_encoder.cache_key(str(model)) != before


@pytest.mark.parametrize("config", [dict(backend="onnx"), dict(batch_size=0), dict(max_batch_tokens=0)])
def test_bad_config_is_a_value_error(config):
    with pytest.raises(ValueError):
        EmbedderConfig(**config)


def test_bf16_backend_needs_a_local_model():
    with pytest.raises(ValueError):
        Embedder(EmbedderConfig(model="someone/not-installed-model", backend="bf16"))


def test_a_damaged_cache_entry_is_rebuilt(tmp_path):
    source = packaged_path(DEFAULT_MODEL)
    fast_encoder.load_encoder(source, str(tmp_path))
    (tmp_path / fast_encoder.cache_key(source) / "encoder.pt").write_bytes(b"truncated")
    rebuilt = fast_encoder.load_encoder(source, str(tmp_path))
    assert not rebuilt.from_cache and fast_encoder.load_encoder(source, str(tmp_path)).from_cache


@pytest.mark.parametrize("backend", ["bf16", "torch"])
def test_a_query_leaves_the_thread_count_as_it_was(fast, fp32, backend):
    import torch

    embedder = fast if backend == "bf16" else fp32
    before = torch.get_num_threads()
    short, long = embedder.embed_query("Does vitamin D prevent tuberculosis?"), embedder.embed(["word " * 600] * 3)
    assert torch.get_num_threads() == before
    assert short.shape == (384,) and long.shape == (3, 384)


def test_auto_device_is_the_cpu_on_a_machine_without_a_gpu():
    import torch

    from models.embedder import resolve_device

    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    expected = "cuda" if cuda else "mps" if mps else "cpu"
    assert resolve_device("auto") == expected
    embedder = Embedder()
    assert embedder.device == expected
    if expected == "cpu":  # this project's machines: nothing changes on a CPU-only machine
        assert embedder.batch_size == 64
        assert embedder.backend == ("bf16" if fast_encoder.cpu_has_bf16() else "torch")


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps"])
def test_a_gpu_that_is_not_there_is_a_clear_error(device):
    import torch

    from models.errors import UnavailableError

    present = torch.cuda.is_available() if device.startswith("cuda") else torch.backends.mps.is_available()
    if present:  # a GPU machine: the device is used as asked
        assert Embedder(EmbedderConfig(device=device)).device == device
        return
    with pytest.raises(UnavailableError, match=f"--device {device}"):
        Embedder(EmbedderConfig(device=device))


@pytest.mark.parametrize("device", ["gpu", "cuda:x", ""])
def test_an_unknown_device_is_a_value_error(device):
    with pytest.raises(ValueError):
        EmbedderConfig(device=device)


def test_llama_offloads_every_layer_only_when_built_for_a_gpu():
    from llama_cpp import llama_supports_gpu_offload

    from models.llm import LLMConfig, LocalLLM, gpu_layers

    assert gpu_layers() == (-1 if llama_supports_gpu_offload() else 0)
    assert gpu_layers(12) == 12 and gpu_layers(0) == 0
    llm = LocalLLM(LLMConfig(model=str(SHARED / "models" / "stories260K.gguf"), n_ctx=128, max_tokens=4))
    assert llm.gpu_layers == gpu_layers()
    assert "".join(llm.stream([{"role": "user", "content": "Once"}]))  # generates with the chosen offload
