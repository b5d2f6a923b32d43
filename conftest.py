"""Test-session environment, set before any test or doctest imports a library.

Tests run offline: the tokenizer file ships with the repo (data/tiktoken), models load from
installed packages or ../shared, and no library phones home.
"""

from __future__ import annotations

import os

from models.tokens import use_bundled_encodings

use_bundled_encodings(os.environ)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bars in captured stderr
