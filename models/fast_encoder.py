"""A bf16 BERT encoder for CPUs with native bf16 arithmetic (AVX-512 BF16, AMX).

Embedding is the ingest's arithmetic. On this project's CPU (AVX-512 BF16 and
VNNI), bf16 matrix products run at about twice the fp32 rate while keeping the
embeddings within cosine 0.9999 of fp32 (int8 reaches the same speed here but only
0.99 fidelity: see benchmarks/RESULTS.md, "Speed"). The encoder is the BERT forward
written out so that the three attention projections are one product, the GELU and
the residual additions are fused into their products (oneDNN) and no pooler runs.

Its weights are derived locally from the installed model, never downloaded, and
cached under ``~/.cache/paperchat/encoders/<key>`` where the key hashes the source
directory and its files' sizes and times: a second load reads the cache and needs
neither sentence-transformers nor the fp32 weights.

>>> from models.embedder import packaged_path, DEFAULT_MODEL
>>> import tempfile
>>> enc = load_encoder(packaged_path(DEFAULT_MODEL), tempfile.mkdtemp())
>>> enc.from_cache, enc.dim, enc.max_seq_length
(False, 384, 256)
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

FORMAT = 1  # bump when the cached file's layout or the forward's numerics change
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "paperchat", "encoders")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json", "modules.json",
                 "sentence_bert_config.json", "1_Pooling/config.json", "tokenizer.json")


def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (else oneDNN emulates it, slower than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cache_key(model_dir: str) -> str:
    """Changes whenever the source model's files change, so a stale cache is never used."""
    h = hashlib.sha256(f"{FORMAT}|{os.path.realpath(model_dir)}".encode())
    for name in _WEIGHT_FILES:
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            st = os.stat(path)
            h.update(f"|{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


class FastEncoder:
    """Token ids -> unit-length mean-pooled float32 sentence vectors."""

    def __init__(self, tensors: dict[str, torch.Tensor], meta: dict, from_cache: bool):
        self.t, self.meta, self.from_cache = tensors, meta, from_cache
        self.dim = int(meta["hidden"])
        self.max_seq_length = int(meta["max_seq_length"])
        self._fused = _fused_ops_work()

    @torch.inference_mode()
    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        ids, mask = torch.from_numpy(input_ids), torch.from_numpy(attention_mask)
        return self._forward(ids, mask).numpy()

    def _linear(self, x, name: str, gelu: bool = False, residual=None):
        w, b = self.t[f"{name}.w"], self.t[f"{name}.b"]
        if self._fused and residual is not None:
            return torch.ops.mkldnn._linear_pointwise.binary(x, residual, w, b, "add")
        if self._fused:
            return torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu" if gelu else "none", [], "none" if gelu else "")
        y = F.linear(x, w, b)
        return F.gelu(y) if gelu else (y.add_(residual) if residual is not None else y)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        t, m = self.t, self.meta
        batch, length = ids.shape
        hidden, heads, eps = self.dim, int(m["heads"]), float(m["eps"])
        h = F.embedding(ids, t["emb.word"]) + t["emb.pos"][:length] + t["emb.type"]
        h = F.layer_norm(h, (hidden,), t["emb.ln.w"], t["emb.ln.b"], eps).reshape(batch * length, hidden)
        keep = mask.bool()[:, None, None, :]
        for i in range(int(m["layers"])):
            p = f"l{i}"
            qkv = self._linear(h, f"{p}.qkv").view(batch, length, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
            ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=keep)
            ctx = ctx.transpose(1, 2).reshape(batch * length, hidden)
            h = F.layer_norm(self._linear(ctx, f"{p}.out", residual=h), (hidden,), t[f"{p}.ln1.w"], t[f"{p}.ln1.b"], eps)
            z = self._linear(h, f"{p}.ffn_in", gelu=True)
            h = F.layer_norm(self._linear(z, f"{p}.ffn_out", residual=h), (hidden,), t[f"{p}.ln2.w"], t[f"{p}.ln2.b"], eps)
        weights = mask.unsqueeze(-1).float()
        pooled = (h.view(batch, length, hidden).float() * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


def load_encoder(model_dir: str, cache_root: str | None = None, st_model=None) -> FastEncoder:
    """The cached bf16 encoder of ``model_dir``, built (from ``st_model`` or the directory) on a miss."""
    folder = Path(cache_root or DEFAULT_CACHE) / cache_key(model_dir)
    weights, meta_file = folder / "encoder.pt", folder / "meta.json"
    if weights.exists() and meta_file.exists():
        try:
            meta = json.loads(meta_file.read_text())
            if meta.get("format") == FORMAT:
                return FastEncoder(torch.load(weights, weights_only=True), meta, True)
        except Exception:  # noqa: BLE001 - torch's unpickler raises many types on a damaged file
            pass  # a damaged cache entry is rebuilt below
    if st_model is None:
        from models.embedder import load_sentence_transformer  # the only module importing sentence_transformers

        st_model = load_sentence_transformer.__wrapped__(model_dir)  # uncached: freed once converted
    tensors, meta = convert(st_model)
    meta["source"] = os.path.realpath(model_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(weights, lambda path: torch.save(tensors, path))  # two builders racing both write whole files
        _atomic_write(meta_file, lambda path: Path(path).write_text(json.dumps(meta, indent=1)))
    except OSError:
        pass  # a read-only cache only costs the next start a rebuild
    return FastEncoder(tensors, meta, False)


def convert(st_model) -> tuple[dict[str, torch.Tensor], dict]:
    """bf16 tensors and shape facts of a mean-pooled, normalised BERT; ValueError for anything else."""
    _check_supported(st_model)
    bert = st_model[0].auto_model
    cfg = bert.config
    e = bert.embeddings
    c = lambda x: x.detach().to(torch.bfloat16).contiguous()  # noqa: E731 - local shorthand
    t = {"emb.word": c(e.word_embeddings.weight), "emb.pos": c(e.position_embeddings.weight),
         "emb.type": c(e.token_type_embeddings.weight[0]), "emb.ln.w": c(e.LayerNorm.weight), "emb.ln.b": c(e.LayerNorm.bias)}
    for i, layer in enumerate(bert.encoder.layer):
        a = layer.attention
        parts = {"qkv": (torch.cat([a.self.query.weight, a.self.key.weight, a.self.value.weight]),
                         torch.cat([a.self.query.bias, a.self.key.bias, a.self.value.bias])),
                 "out": (a.output.dense.weight, a.output.dense.bias),
                 "ffn_in": (layer.intermediate.dense.weight, layer.intermediate.dense.bias),
                 "ffn_out": (layer.output.dense.weight, layer.output.dense.bias),
                 "ln1": (a.output.LayerNorm.weight, a.output.LayerNorm.bias),
                 "ln2": (layer.output.LayerNorm.weight, layer.output.LayerNorm.bias)}
        for name, (w, b) in parts.items():
            t[f"l{i}.{name}.w"], t[f"l{i}.{name}.b"] = c(w), c(b)
    meta = {"format": FORMAT, "hidden": cfg.hidden_size, "heads": cfg.num_attention_heads,
            "layers": cfg.num_hidden_layers, "eps": cfg.layer_norm_eps, "max_seq_length": st_model.max_seq_length}
    return t, meta


def _check_supported(st_model) -> None:
    modules = [type(m).__name__ for m in st_model]
    bert = st_model[0].auto_model if modules and modules[0] == "Transformer" else None
    cfg = getattr(bert, "config", None)
    pooling = st_model[1] if len(modules) > 1 else None
    ok = (modules == ["Transformer", "Pooling", "Normalize"] and cfg is not None
          and cfg.model_type == "bert" and cfg.hidden_act == "gelu"
          and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
          and getattr(pooling, "pooling_mode", None) in ("mean", None)
          and getattr(pooling, "pooling_mode_mean_tokens", True))
    if not ok:
        raise ValueError(f"the bf16 encoder handles mean-pooled, normalised BERT models, not {modules}")


def _fused_ops_work() -> bool:
    """oneDNN's fused linear+GELU / linear+add exist in this torch build and give the plain result."""
    try:
        x, w, b = (torch.randn(4, 8).bfloat16(), torch.randn(16, 8).bfloat16(), torch.randn(16).bfloat16())
        with torch.inference_mode():
            fused = torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu", [], "none").float()
            added = torch.ops.mkldnn._linear_pointwise.binary(x, torch.ones(4, 16).bfloat16(), w, b, "add").float()
        plain = F.linear(x.float(), w.float(), b.float())
        return bool(torch.allclose(fused, F.gelu(plain), atol=0.1) and torch.allclose(added, plain + 1, atol=0.1))
    except (RuntimeError, AttributeError):
        return False


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(str(tmp))
    os.replace(tmp, path)
