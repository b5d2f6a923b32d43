"""First start in the background: the page is served at once while the samples are indexed and models load.

:class:`Startup` runs in one thread: index the sample papers when the index is empty
(progress with done/total, rate and time left), then load each configured model (download
progress), then look up the new untitled papers on arXiv when it can be reached. The page
polls :meth:`Startup.status`; questions asked before the index is ready get a clear
"still indexing" message instead of an answer from half an index.

>>> status = Status(phase="indexing", done=64, total=180, line="64/180 papers (35%)")
>>> status.ready, status.message()
(False, 'Still indexing the sample papers: 64/180 papers (35%). Ask again when it is done.')
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Status:
    phase: str = "starting"  # starting | indexing | loading | enriching | ready | failed
    done: int = 0
    total: int | None = None
    line: str = ""  # the progress line shown in the page
    notes: tuple[str, ...] = ()  # said once, in the page's notice area
    index_ready: bool = False

    @property
    def ready(self) -> bool:
        return self.index_ready or self.phase in ("loading", "enriching", "ready")

    def message(self) -> str:
        """What a question asked now is answered with, while the index is not ready."""
        if self.phase == "failed":
            return "Indexing the sample papers failed: " + self.line
        return f"Still indexing the sample papers: {self.line or 'starting'}. Ask again when it is done."


@dataclass
class Startup:
    """The first-start work of :class:`webapp.services.Services`, in a thread; ``status`` is safe to read any time."""

    steps: list[tuple[str, Callable[["Startup"], None]]] = field(default_factory=list)
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self._status = Status()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="paperchat-startup", daemon=True)

    @property
    def status(self) -> Status:
        with self._lock:
            return self._status

    def update(self, **changes) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def note(self, line: str) -> None:
        """A notice shown once in the page (and printed to the console)."""
        self.log(f"PaperChat: {line}")
        with self._lock:
            self._status = replace(self._status, notes=(*self._status.notes, line))

    def start(self) -> "Startup":
        self.thread.start()
        return self

    def wait(self, timeout: float | None = None) -> Status:
        self.thread.join(timeout)
        return self.status

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            for phase, step in self.steps:
                self.update(phase=phase, done=0, total=None, line="")
                step(self)
            self.update(phase="ready", index_ready=True, line=f"ready in {time.perf_counter() - started:.0f}s")
        except Exception as exc:  # a bug or a broken index: the page says so instead of waiting forever
            self.log("".join(traceback.format_exception(exc)))
            self.update(phase="failed", line=f"{type(exc).__name__}: {exc}")
            self.note(f"Start-up failed: {type(exc).__name__}: {exc}")
