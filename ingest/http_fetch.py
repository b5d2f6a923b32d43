"""HTTP GET for remote sources: one shared rate limiter per service, clear offline errors.

A service such as the arXiv API allows one request every few seconds from a
client, whatever the client is reading; so the limiter is shared by every spec
that uses the same base URL in this process. Network failures (refused, DNS,
timeout) raise ``UnavailableError`` at once; 429 and 5xx answers are retried a few
times, spaced by the limiter (and ``Retry-After``, capped).

>>> ticks = iter([0.0, 1.0, 3.0, 3.5, 6.0])  # the clock at each look
>>> slept = []
>>> limiter = RateLimiter(3.0, clock=lambda: next(ticks), sleep=slept.append)
>>> for _ in range(3):
...     with limiter.slot():
...         pass  # one request
>>> slept
[2.0, 2.5]
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from models.errors import UnavailableError

USER_AGENT = "PaperChat/0.1 (local research assistant; https://arxiv.org/help/api)"
RETRIES = 3
MAX_RETRY_AFTER_S = 30.0
_RETRY_STATUS = {429, 500, 502, 503, 504}
_LIMITERS: dict[str, RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


class RateLimiter:
    """Keeps at least ``delay_s`` between the end of one request and the start of the next.

    Counting from the end (not the start) of the previous request is the stricter
    reading of "one request every 3 s": a slow answer never shortens the pause.
    """

    def __init__(self, delay_s: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.delay_s, self._clock, self._sleep = delay_s, clock, sleep
        self._last: float | None = None
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, at_least: float = 0.0) -> Iterator[None]:
        """Wait for ``max(delay_s, at_least)`` since the last slot ended, then hold the slot."""
        with self._lock:
            if self._last is not None:
                remaining = max(self.delay_s, at_least) - (self._clock() - self._last)
                if remaining > 0:
                    self._sleep(remaining)
            try:
                yield
            finally:
                self._last = self._clock()


def limiter_for(base_url: str, delay_s: float) -> RateLimiter:
    """The process-wide limiter of a service; its delay follows the latest options."""
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.setdefault(base_url, RateLimiter(delay_s))
        limiter.delay_s = delay_s
        return limiter


def fetch(url: str, service: str, timeout_s: float, limiter: RateLimiter) -> tuple[int, bytes]:
    """``(status, body)`` of a GET; 4xx answers are returned, not raised, for the caller to read."""
    retry_after = 0.0
    for attempt in range(RETRIES + 1):
        try:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with limiter.slot(retry_after), urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            if exc.code not in _RETRY_STATUS or attempt == RETRIES:
                if exc.code >= 500 or exc.code == 429:
                    raise UnavailableError(f"{service} is not answering (HTTP {exc.code} at {url})") from None
                return exc.code, exc.read()
            retry_after = _retry_after(exc.headers.get("Retry-After"))
        except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UnavailableError(f"{service} cannot be reached at {url}: {reason}. "
                                   "Check the network connection (remote sources need one).") from None
    raise AssertionError("unreachable")  # the loop returns or raises


def _retry_after(header: str | None) -> float:
    try:
        return min(float(header or 0), MAX_RETRY_AFTER_S)
    except ValueError:
        return 0.0
