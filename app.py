"""PaperChat web app: chat with cited answers over the indexed abstracts (Gradio).

    python app.py                                   # http://127.0.0.1:7860, index in ./index
    python app.py --index /tmp/idx --model ../shared/models/stories260K.gguf --port 8080

Settings come from flags, then environment (``PAPERCHAT_INDEX``, ``PAPERCHAT_MODEL``
(comma-separated), ``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``), then defaults. On a
Hugging Face Space (``SPACE_ID`` is set) everything is written under ``/data`` when
the Space has persistent storage, else under ``/tmp/paperchat``. The default model is
fetched on first start; offline before that, answers are extractive and the UI says why.
An empty index is filled with ``data/samples`` in the background while the page is served (it
shows the progress). Conversations are kept in the browser, encrypted with a key kept beside
the index (``.browser-secret``, or ``PAPERCHAT_SECRET``).

>>> s = parse_args(["--port", "8123", "--model", "a.gguf"], env={"PAPERCHAT_MODEL": "b.gguf"})
>>> s.host, s.port, s.index, s.models
('127.0.0.1', 8123, 'index', ('a.gguf',))
>>> parse_args([], env={"SPACE_ID": "u/paperchat", "GRADIO_SERVER_NAME": "0.0.0.0"}).host
'0.0.0.0'
>>> parse_args(["--model", "none"], env={}).models
()
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    index: str = "index"
    models: tuple[str, ...] = ()  # empty: extractive answers only (--model none)
    samples: str = str(ROOT / "data" / "samples")
    arxiv_url: str | None = None  # None: the real arXiv API
    space_dir: str | None = None  # writable root on a Hugging Face Space
    device: str = "auto"  # embedding device: CUDA, else MPS, else the CPU
    gpu_layers: int | None = None  # llama.cpp layers on the GPU (None: all when built with GPU support)


def space_dir(env: Mapping[str, str]) -> str | None:
    """Where a Space may write: persistent ``/data`` when mounted and writable, else /tmp."""
    if not env.get("SPACE_ID"):
        return None
    return "/data" if os.path.isdir("/data") and os.access("/data", os.W_OK) else os.path.join(
        tempfile.gettempdir(), "paperchat")


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    """Flags over environment over defaults; see the module docstring."""
    from models.llm import DEFAULT_MODEL, NO_MODEL

    writable = space_dir(env)
    default_index = env.get("PAPERCHAT_INDEX") or (os.path.join(writable, "index") if writable else "index")
    default_models = env.get("PAPERCHAT_MODEL") or DEFAULT_MODEL
    parser = argparse.ArgumentParser(prog="app.py", description="PaperChat web app")
    parser.add_argument("--host", default=env.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if writable else "127.0.0.1"),
                        help="address to serve on (default 127.0.0.1; GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=int(env.get("GRADIO_SERVER_PORT") or 7860),
                        help="port (default 7860; GRADIO_SERVER_PORT)")
    parser.add_argument("--index", default=default_index, help="index directory (default ./index; PAPERCHAT_INDEX)")
    parser.add_argument("--model", action="append", metavar="SPEC",
                        help="GGUF path, owner/repo:file.gguf, 'default' or 'none'; repeat for a model choice in "
                             "the UI (PAPERCHAT_MODEL, comma-separated; default: the default model, downloaded on "
                             "first start; offline before that, answers are extractive)")
    parser.add_argument("--samples", default=str(ROOT / "data" / "samples"),
                        help="papers indexed on first start when the index is empty")
    parser.add_argument("--arxiv-url", default=env.get("PAPERCHAT_ARXIV_URL") or None, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="auto", help="embedding device: auto (CUDA, else MPS, else CPU), cpu, "
                                                         "cuda, cuda:N, mps (default auto)")
    parser.add_argument("--gpu-layers", type=int, help="layers llama.cpp puts on the GPU (default: all when it was "
                                                       "built with GPU support, else 0)")
    args = parser.parse_args(list(argv))
    models = args.model or default_models.split(",")
    models = [m.strip() for m in models if m.strip().lower() not in NO_MODEL]  # "none": extractive only
    return Settings(args.host, args.port, args.index, tuple(models), args.samples, args.arxiv_url, writable,
                    device=args.device, gpu_layers=args.gpu_layers)


def prepare_environment(settings: Settings, env: dict) -> None:
    """On a Space, keep model and tokenizer caches in the writable directory (before any hub import)."""
    if settings.space_dir:
        env.setdefault("HF_HOME", os.path.join(settings.space_dir, "hf_home"))
        env.setdefault("GRADIO_TEMP_DIR", os.path.join(settings.space_dir, "gradio_tmp"))
    from models.tokens import use_bundled_encodings

    use_bundled_encodings(env)  # the repo ships the tokenizer file: a fresh offline machine still indexes
    env.setdefault("ANONYMIZED_TELEMETRY", "False")
    env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def browser_secret(settings: Settings, env: Mapping[str, str]) -> str:
    """The key that encrypts the conversations kept in the browser: ``PAPERCHAT_SECRET``, else one made on first
    start and kept beside the index, so conversations survive a server restart (and another index's app
    cannot read them)."""
    if env.get("PAPERCHAT_SECRET"):
        return env["PAPERCHAT_SECRET"]
    os.makedirs(settings.index, exist_ok=True)
    path = os.path.join(settings.index, ".browser-secret")
    if not os.path.isfile(path):
        import secrets

        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(secrets.token_urlsafe(24))
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(sys.argv[1:] if argv is None else argv, os.environ)
    prepare_environment(settings, os.environ)
    # Imported only now: huggingface_hub and gradio read HF_HOME etc. when first imported.
    from models.errors import PaperChatError
    from webapp.services import Services
    from webapp.ui import build_ui

    try:
        services = Services.start(settings, log=lambda line: print(line, flush=True))
        demo, launch_options = build_ui(services, secret=browser_secret(settings, os.environ))
        print(f"PaperChat: serving on http://{settings.host}:{settings.port}", flush=True)
        demo.queue(default_concurrency_limit=1).launch(server_name=settings.host, server_port=settings.port,
                                                       **launch_options)
    except (PaperChatError, ValueError, OSError) as exc:  # bad --model, index mismatch, port in use
        print(f"PaperChat cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
