"""A local GGUF language model through llama-cpp-python: the only place that imports llama_cpp.

A model is named by a path (``models/x.gguf``) or by Hugging Face repository and file
(``owner/repo:file.gguf``, optionally ``owner/repo@revision:file.gguf``), downloaded once
into the huggingface_hub cache (``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` are honoured by the
hub library itself). ``default`` names :data:`DEFAULT_MODEL`. Text streams token by token,
through the model's own chat template when the GGUF has one, else through a plain
``### User:``/``### Assistant:`` template (the tiny test model has none).

>>> llm = LocalLLM(LLMConfig(model="../shared/models/stories260K.gguf", n_ctx=256, max_tokens=8))
>>> pieces = list(llm.stream([{"role": "user", "content": "Tell me a story."}]))
>>> len(pieces) > 1, llm.has_chat_template, llm.count_tokens("Once upon a time") > 0
(True, False, True)
"""

from __future__ import annotations

import os
import re
import socket
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from models.errors import UnavailableError
from models.threads import threads_now

# Qwen2.5-1.5B-Instruct, 4-bit: ~1.1 GB, a real chat template, 32k context. Chosen over the 0.5B by measurement
# (README "The language model"): more key facts and fewer replaced answers, first token ~2 s on two CPU cores.
DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct-GGUF:qwen2.5-1.5b-instruct-q4_k_m.gguf"
ALIASES = {"default": DEFAULT_MODEL}
NO_MODEL = frozenset({"", "none", "extractive", "off"})  # names that ask for extractive answers
_HUB_SPEC = re.compile(r"^(?P<repo>[\w.\-]+/[\w.\-]+)(?:@(?P<revision>[\w.\-/]+))?:(?P<file>[^:]+\.gguf)$", re.I)
Progress = Callable[[int, "int | None"], None]  # (bytes done, total bytes or None)


@dataclass(frozen=True)
class LLMConfig:
    """Which model, and how it generates. ``model`` is a path, ``owner/repo:file.gguf`` or ``default``."""

    model: str = DEFAULT_MODEL
    n_ctx: int = 4096  # capped at the model's trained context
    n_threads: int | None = None  # None: the idle cores before each generation (models/threads.py)
    temperature: float = 0.1  # low: answers should stick to the sources
    max_tokens: int = 320
    seed: int = 0
    repeat_penalty: float = 1.1
    chat_template: str | None = None  # a Jinja chat template to use instead of the GGUF's own
    n_gpu_layers: int | None = None  # layers on the GPU; None: all (-1) when llama.cpp was built with GPU support, else 0


def resolve_model(spec: str, progress: Progress | None = None, cache_dir: str | None = None) -> str:
    """Local path of the GGUF named by ``spec``, downloading it from the hub on first use.

    Raises UnavailableError when the file is missing, or the hub cannot be reached and the
    file is not cached; ValueError when ``spec`` names neither a file nor a hub file.
    """
    spec = ALIASES.get(spec.strip(), spec.strip())
    if not spec:
        raise ValueError("no model given")
    path = os.path.expanduser(spec)
    if os.path.isfile(path):
        return os.path.abspath(path)
    hub = _HUB_SPEC.match(spec)
    if hub is None:
        if spec.lower().endswith(".gguf"):
            raise UnavailableError(f"Model file not found: {spec}")
        raise ValueError(f"A model is a .gguf file or 'owner/repo:file.gguf', not {spec!r}")
    return _download(hub.group("repo"), hub.group("file"), hub.group("revision"), progress, cache_dir)


def _download(repo: str, filename: str, revision: str | None, progress: Progress | None, cache_dir: str | None) -> str:
    # Imported here: the hub library reads HF_ENDPOINT / HF_HUB_OFFLINE when first imported.
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                        OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError)

    name = f"{repo}:{filename}"
    reachable = _hub_reachable()  # offline: the cache or a clear error at once, not 20 s of retries
    try:
        return hf_hub_download(repo, filename, revision=revision, cache_dir=cache_dir, local_files_only=not reachable,
                               tqdm_class=_progress_class(progress) if progress else None)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:  # before EntryNotFoundError: a subclass
        why = "offline mode is on (HF_HUB_OFFLINE)" if _offline_mode() else (
            f"{_endpoint()} cannot be reached (offline?)" if not reachable else _first_line(exc))
        raise UnavailableError(f"Model {name} is not downloaded yet and cannot be downloaded: {why}.") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise UnavailableError(f"Model {name} was not found on the hub: {_first_line(exc)}") from exc
    except (HfHubHTTPError, OSError) as exc:
        raise UnavailableError(f"Could not download model {name}: {_first_line(exc)}") from exc


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _offline_mode() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the hub's host accepts a connection (False in offline mode, without trying)."""
    if _offline_mode():
        return False
    url = urllib.parse.urlsplit(_endpoint())
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout_s):
            return True
    except OSError:  # no route, refused, DNS failure, timeout
        return False


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _progress_class(callback: Progress):
    """A tqdm class for hf_hub_download that reports (done, total) bytes to ``callback`` instead of drawing."""
    from tqdm import tqdm

    class _Report(tqdm):
        def __init__(self, *args, **kwargs):
            self._done, self._size = int(kwargs.get("initial") or 0), kwargs.get("total")
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            self._done += int(n or 0)
            callback(self._done, self._size)

    return _Report


def gpu_layers(requested: int | None = None) -> int:
    """Layers llama.cpp offloads to the GPU: ``requested``, else every layer (-1) when this llama.cpp was
    built with GPU support (CUDA, Metal, Vulkan...), else 0.

    >>> gpu_layers(8), gpu_layers() in (0, -1)
    (8, True)
    """
    if requested is not None:
        return requested
    from llama_cpp import llama_supports_gpu_offload

    return -1 if llama_supports_gpu_offload() else 0


def fallback_prompt(messages: Sequence[dict]) -> str:
    """The plain template for models without a chat template.

    >>> fallback_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    '### System:\\nBe brief.\\n\\n### User:\\nHi\\n\\n### Assistant:\\n'
    """
    turns = [f"### {m['role'].capitalize()}:\n{m['content']}\n\n" for m in messages]
    return "".join(turns) + "### Assistant:\n"


FALLBACK_STOP = ["### User:", "### System:", "\n### "]


class LocalLLM:
    """A loaded GGUF model. ``stream`` yields text pieces; one generation at a time (llama.cpp is not re-entrant)."""

    def __init__(self, config: LLMConfig = LLMConfig(), progress: Progress | None = None, cache_dir: str | None = None):
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.config = config
        self.path = resolve_model(config.model, progress, cache_dir)
        try:
            self.gpu_layers = gpu_layers(config.n_gpu_layers)
            threads = config.n_threads or os.cpu_count()
            self._llama = Llama(model_path=self.path, n_ctx=config.n_ctx, n_threads=threads, n_threads_batch=threads,
                                seed=config.seed, n_gpu_layers=self.gpu_layers, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise UnavailableError(f"Cannot load model {self.path}: {exc}") from exc
        # Free the model while the interpreter is still whole: llama.cpp's own __del__ at exit prints
        # "Exception ignored ... TypeError" once its C bindings are torn down.
        self._finalizer = weakref.finalize(self, self._llama.close)
        trained = int(self._llama.metadata.get(f"{self._llama.metadata.get('general.architecture', '')}.context_length")
                      or config.n_ctx)
        self.n_ctx = min(self._llama.n_ctx(), trained)
        self.name = os.path.basename(self.path)  # the file name: short enough for a badge, exact enough to tell
        template = config.chat_template or self._llama.metadata.get("tokenizer.chat_template")
        self._formatter = None
        if template:
            eos, bos = (self._token_text(self._llama.token_eos()), self._token_text(self._llama.token_bos()))
            self._formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
            if config.chat_template:  # a template given in the config replaces the GGUF's own
                self._llama.chat_handler = self._formatter.to_chat_handler()
        self._lock = threading.Lock()
        self._prefix: tuple[list[int], object] | None = None  # (tokens, saved KV state) of the fixed prefix
        self.threads = threads

    def keep_prefix(self, messages: Sequence[dict]) -> int:
        """Evaluate ``messages`` (the prompt's fixed opening) once and keep its KV cache for every later prompt.

        llama.cpp reuses the longest common token prefix of consecutive prompts by itself; this
        also survives a different prompt in between (a follow-up rewrite). Returns the tokens kept.
        """
        sentinel = "\u2063next\u2063"  # the next turn's text: what precedes it is the same in every prompt
        rendered = self.render([*messages, {"role": "user", "content": sentinel}])
        if sentinel not in rendered:  # a template that ignores the messages: no prefix is shared
            return 0
        whole, cut = self._tokens(rendered), self._tokens(rendered[:rendered.index(sentinel)])
        tokens = cut[:next((i for i, (a, b) in enumerate(zip(cut, whole)) if a != b), min(len(cut), len(whole)))]
        with self._lock:
            self._llama.reset()
            self._llama.eval(tokens)
            self._prefix = (tokens, self._llama.save_state())
        return len(tokens)

    def _restore_prefix(self) -> None:
        if self._prefix is None:
            return
        tokens, state = self._prefix
        if list(self._llama._input_ids[:len(tokens)]) != tokens:
            self._llama.load_state(state)

    def _tokens(self, prompt: str) -> list[int]:
        return self._llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)

    def close(self) -> None:
        """Free the model now (also done automatically when this object is collected or at exit)."""
        self._finalizer()

    def _token_text(self, token: int) -> str:
        return self._llama._model.token_get_text(token) if token >= 0 else ""

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    def render(self, messages: Sequence[dict]) -> str:
        """The exact prompt text the model sees for ``messages``."""
        if self._formatter is None:
            return fallback_prompt(messages)
        return self._formatter(messages=list(messages)).prompt

    def count_tokens(self, text: str) -> int:
        """Length of ``text`` in the model's own tokens (no special tokens parsed: this is data)."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_messages(self, messages: Sequence[dict]) -> int:
        """Tokens of the whole rendered prompt, as llama.cpp will tokenize it."""
        return len(self._tokens(self.render(messages)))

    def stream(self, messages: Sequence[dict], max_tokens: int | None = None,
               stop: Sequence[str] | None = None) -> Iterator[str]:
        """The assistant's reply to ``messages``, piece by piece; ends at a ``stop`` string or ``max_tokens``."""
        max_tokens = max_tokens or self.config.max_tokens
        stop = list(stop or [])
        options = dict(max_tokens=max_tokens, temperature=self.config.temperature, seed=self.config.seed,
                       repeat_penalty=self.config.repeat_penalty, stream=True)
        with self._lock:
            self.threads = threads_now(self.config.n_threads)
            self._llama._ctx.set_n_threads(self.threads, self.threads)
            self._restore_prefix()
            if self._formatter is not None:
                chunks = self._chat(messages, stop, options)
            else:
                completion = self._llama.create_completion(fallback_prompt(messages), stop=stop + FALLBACK_STOP,
                                                           **options)
                chunks = (c["choices"][0].get("text", "") for c in completion)
            for piece in chunks:
                if piece:
                    yield piece

    def _chat(self, messages: Sequence[dict], stop: list[str], options: dict) -> Iterator[str]:
        for chunk in self._llama.create_chat_completion(list(messages), stop=stop, **options):
            yield chunk["choices"][0]["delta"].get("content") or ""
