"""One writer per index: a lock file naming its holder, waited for or refused.

Two processes writing one Chroma directory at once lose vectors for good: each keeps its
own copy of the vector index in memory and saves it over the other's. So every writer
(``python -m ingest``, ``--rechunk``, ``--check --repair``, the app's "Add papers") holds
:class:`WriterLock` on ``<index>/writer.lock`` while it writes. The file says who holds it
(pid, host, command, since when); the lock itself is the kernel's ``flock``, so a writer
that dies (even by SIGKILL) releases it, and the next one takes over and says so. Within
one process the lock is re-entrant per thread; another thread waits like another process.
A Chroma server has no directory to lock: :class:`ServerLease` keeps the same rules with a
lease row in the index's meta collection.

:class:`FileMutex` is the short lock around the moments a process loads or saves the vector
segments (opening, reopening, each write), so that a reader never loads a file that a
writer is in the middle of saving.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> lock = WriterLock(folder)
>>> with lock.hold("python -m ingest a.jsonl"):
...     holder = lock.holder()
>>> holder.pid == os.getpid(), holder.command, lock.holder() is None
(True, 'python -m ingest a.jsonl', True)
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from models.errors import PaperChatError

LEASE_S = 600.0  # a server lease no write renewed for this long is taken over
PROCESS_TOKEN = uuid.uuid4().hex  # tells this process's own earlier locks from another's (pids are reused)
HOST = socket.gethostname()
_POLL_S = 0.25
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)  # file systems where flock is not available


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) an index's writer lock."""

    pid: int
    host: str
    command: str
    since: float  # Unix time
    token: str = ""
    released: bool = False

    def describe(self) -> str:
        """'pid 4242 (python -m ingest big.jsonl), since 10:01:02' (the host when it is another)."""
        where = "" if self.host == HOST else f" on {self.host}"
        return f"pid {self.pid}{where} ({self.command}), since {time.strftime('%H:%M:%S', time.localtime(self.since))}"

    def alive(self) -> bool | None:
        """Whether the holder still runs: None when it runs on another host (unknowable from here)."""
        if self.host != HOST:
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class IndexBusyError(PaperChatError):
    """Another writer holds the index (raised instead of waiting)."""

    def __init__(self, where: str, holder: Holder | None):
        self.where, self.holder = where, holder
        who = holder.describe() if holder else "another process"
        super().__init__(f"the index at {where} is being written by {who}")


def current_command() -> str:
    """This process's command line, as a lock names it: 'python -m ingest data/samples'."""
    argv = list(sys.argv)
    if argv and argv[0].endswith("__main__.py"):
        argv[0] = "-m " + os.path.basename(os.path.dirname(argv[0]))
    return " ".join(["python", *argv])[:300]


class WriterLock:
    """The writer lock of the index directory ``folder`` (see the module docstring)."""

    def __init__(self, folder: str, name: str = "writer.lock"):
        self.path = os.path.join(folder, name)
        self._thread = threading.RLock()
        self._depth, self._fd = 0, -1
        self.took_over: Holder | None = None  # set when the last holder died without releasing

    def holder(self) -> Holder | None:
        """The current holder, or None when the lock is free."""
        holder = _read(self.path)
        return None if holder is None or holder.released else holder

    @contextmanager
    def hold(self, command: str | None = None, wait: bool = True,
             on_wait: Callable[[Holder | None], None] | None = None) -> Iterator[bool]:
        """Hold the lock for the ``with`` block; yields True when this process just took it over
        from another writer (whose changes its open index has not seen)."""
        fresh = self.acquire(command, wait, on_wait)
        try:
            yield fresh
        finally:
            self.release()

    def acquire(self, command: str | None = None, wait: bool = True,
                on_wait: Callable[[Holder | None], None] | None = None) -> bool:
        """Take the lock (re-entrant per thread). ``wait=False``: :class:`IndexBusyError` when held.
        ``on_wait(holder)`` is called once per holder met while waiting. True as in :meth:`hold`."""
        if not self._thread.acquire(blocking=False):
            if not wait:
                raise IndexBusyError(os.path.dirname(self.path), self.holder())
            if on_wait:
                on_wait(self.holder())
            self._thread.acquire()
        if self._depth:
            self._depth += 1
            return False
        try:
            previous = self._take(command or current_command(), wait, on_wait)
        except BaseException:
            self._thread.release()
            raise
        self._depth = 1
        return previous is None or previous.token != PROCESS_TOKEN

    def _take(self, command: str, wait: bool, on_wait) -> Holder | None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        shown = None
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno in _NO_LOCKS:  # a file system without locks: one writer is then up to the user
                        break
                    if not isinstance(exc, BlockingIOError):
                        raise
                    holder = self.holder()
                    if not wait:
                        raise IndexBusyError(os.path.dirname(self.path), holder) from None
                    if on_wait and holder != shown:
                        on_wait(holder)
                        shown = holder
                    time.sleep(_POLL_S)
            previous = _read(self.path)
            self.took_over = previous if previous and not previous.released and previous.alive() is not True else None
            _write(fd, Holder(os.getpid(), HOST, command, time.time(), PROCESS_TOKEN))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return previous

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            holder = _read(self.path)
            if holder is not None:
                _write(self._fd, Holder(**{**asdict(holder), "released": True}))
            _unlock(self._fd)
            self._fd = -1
        self._thread.release()


class FileMutex:
    """An exclusive lock on ``<folder>/<name>``, re-entrant per thread; a no-op where the file
    cannot be created (a read-only index: nobody writes it then)."""

    def __init__(self, folder: str, name: str = "segments.lock"):
        self.path = os.path.join(folder, name)
        self._thread = threading.RLock()
        self._depth, self._fd = 0, -1

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._thread:
            if self._depth == 0:
                self._fd = _open_for_lock(self.path)
                if self._fd >= 0:
                    try:
                        fcntl.flock(self._fd, fcntl.LOCK_EX)
                    except OSError as exc:
                        if exc.errno not in _NO_LOCKS:
                            raise
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd >= 0:
                    _unlock(self._fd)
                    self._fd = -1


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        pass  # a file system without locks; closing the descriptor releases ours anyway
    os.close(fd)


def _open_for_lock(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            try:
                return os.open(path, os.O_RDONLY)  # flock works on a read-only descriptor too
            except OSError:
                return -1
        raise


def _read(path: str) -> Holder | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return Holder(int(data["pid"]), str(data["host"]), str(data["command"]), float(data["since"]),
                      str(data.get("token", "")), bool(data.get("released", False)))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no lock file yet, or one being rewritten: nobody known


def _write(fd: int, holder: Holder) -> None:
    data = json.dumps(asdict(holder)).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


class ServerLease:
    """The writer lock on a Chroma server: numbered lease rows ``lock:<n>`` in the meta collection.

    Chroma ignores an ``add`` of an id that exists, so of two writers adding ``lock:<n+1>``
    only one finds its token there afterwards: it holds the lease until it marks the row
    released. A lease whose holder is dead (same host) or has not written for ``LEASE_S``
    is taken over by adding the next number; its old holder then stops at its next write
    (:meth:`renew`, called by every write).
    """

    def __init__(self, collection: Callable[[], Any], where: str):
        self._collection, self.where = collection, where  # the meta collection (a Chroma collection), lazily
        self._thread, self._depth = threading.RLock(), 0
        self._row: tuple[str, dict] | None = None

    def _latest(self) -> tuple[int, dict | None]:
        got = self._collection().get(where={"kind": "lock"}, include=["metadatas"])
        rows = sorted(got["metadatas"], key=lambda m: int(m["n"]))
        return (int(rows[-1]["n"]), rows[-1]) if rows else (0, None)

    def holder(self) -> Holder | None:
        _, row = self._latest()
        return None if row is None or row["released"] else _holder(row)

    @contextmanager
    def hold(self, command: str | None, wait: bool, on_wait) -> Iterator[bool]:
        with self._thread:
            if self._depth == 0:
                self._take(command or current_command(), wait, on_wait)
            self._depth += 1
            try:
                yield False  # a server's clients always see each other's writes: nothing to reopen
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def _take(self, command: str, wait: bool, on_wait) -> None:
        shown = None
        while True:
            n, row = self._latest()
            if row is None or row["released"] or _expired(row):
                mine = {"kind": "lock", "n": n + 1, "pid": os.getpid(), "host": HOST, "command": command,
                        "since": time.time(), "heartbeat": time.time(), "token": uuid.uuid4().hex, "released": False}
                self._collection().add(ids=[f"lock:{n + 1}"], embeddings=[[0.0]], metadatas=[mine])
                got = self._collection().get(ids=[f"lock:{n + 1}"], include=["metadatas"])
                if got["ids"] and got["metadatas"][0]["token"] == mine["token"]:
                    self._row = (f"lock:{n + 1}", mine)
                    if n > 8:  # old released leases: keep a few for the record
                        self._collection().delete(where={"$and": [{"kind": "lock"}, {"n": {"$lt": n - 4}}]})
                    return
                continue
            holder = _holder(row)
            if not wait:
                raise IndexBusyError(self.where, holder)
            if on_wait and holder != shown:
                on_wait(holder)
                shown = holder
            time.sleep(0.5)

    def renew(self) -> None:
        """Called by every write: extend the lease, or stop when another writer took it over."""
        if self._row is None:
            return
        row_id, mine = self._row
        n, latest = self._latest()
        if latest is None or latest["token"] != mine["token"]:
            raise PaperChatError(f"another writer took over the index at {self.where} "
                                 f"({_holder(latest).describe() if latest else 'unknown'}); stopping")
        mine["heartbeat"] = time.time()
        self._collection().upsert(ids=[row_id], embeddings=[[0.0]], metadatas=[mine])

    def _release(self) -> None:
        if self._row is not None:
            row_id, mine = self._row
            _, latest = self._latest()
            if latest is not None and latest["token"] == mine["token"]:
                self._collection().upsert(ids=[row_id], embeddings=[[0.0]], metadatas=[{**mine, "released": True}])
            self._row = None


def _holder(row: dict) -> Holder:
    return Holder(int(row["pid"]), str(row["host"]), str(row["command"]), float(row["since"]),
                  str(row["token"]), bool(row["released"]))


def _expired(row: dict) -> bool:
    return _holder(row).alive() is False or time.time() - float(row["heartbeat"]) > LEASE_S
