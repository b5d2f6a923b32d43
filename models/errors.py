"""The project's user-facing exceptions.

Library code raises ``ValueError`` for bad caller input and these for failures a
user must read about; only the edges (``app.py``, the ``__main__`` modules) turn
them into messages.

>>> try:
...     raise IndexMismatchError("index built with model A, opened with model B")
... except PaperChatError as exc:
...     print(exc)
index built with model A, opened with model B
"""

from __future__ import annotations


class PaperChatError(Exception):
    """Base class: a failure with a message meant for the user."""


class IndexMismatchError(PaperChatError):
    """The index was built with another embedding model or dimension."""


class UnavailableError(PaperChatError):
    """A remote source or model cannot be reached (offline, not found, refused)."""
