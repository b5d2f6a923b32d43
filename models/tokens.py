"""The tiktoken encoding that chunking and prompt budgets count with, available offline.

tiktoken downloads its encoding files on first use. The repo ships ``cl100k_base`` in
``data/tiktoken``, named as tiktoken's cache names it (the SHA-1 of its download URL),
so a fresh machine with no network can index and answer. The edges (``app.py`` and the
``__main__`` modules) call :func:`use_bundled_encodings` before anything counts tokens;
a ``TIKTOKEN_CACHE_DIR`` the user set wins.

>>> env = {}
>>> use_bundled_encodings(env)
>>> Path(env["TIKTOKEN_CACHE_DIR"]).name
'tiktoken'
>>> get_encoding("cl100k_base").encode_ordinary("Attention is all you need")
[70429, 374, 682, 499, 1205]
"""

from __future__ import annotations

from collections.abc import MutableMapping
from functools import lru_cache
from pathlib import Path

from models.errors import UnavailableError

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "data" / "tiktoken"


def use_bundled_encodings(env: MutableMapping[str, str]) -> None:
    """Point tiktoken at the bundled encodings unless the user chose a cache directory."""
    env.setdefault("TIKTOKEN_CACHE_DIR", str(BUNDLED_DIR))


@lru_cache(maxsize=4)
def get_encoding(name: str):
    """tiktoken's encoding ``name``; UnavailableError when it is neither cached nor downloadable."""
    import tiktoken  # reads TIKTOKEN_CACHE_DIR; offline once the encoding file is cached

    try:
        return tiktoken.get_encoding(name)
    except ValueError:  # an unknown encoding name: the caller's mistake
        raise
    except Exception as exc:  # not cached and no network: tiktoken raises requests' errors
        raise UnavailableError(f"Cannot load the tiktoken encoding {name!r} ({exc}); offline, point "
                               f"TIKTOKEN_CACHE_DIR at a folder holding it, such as {BUNDLED_DIR}.") from exc
