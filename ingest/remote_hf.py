"""``hf:<dataset>[:<split>]``: rows of a Hugging Face Hub dataset, through ``datasets``.

The dataset is streamed (``load_dataset(..., streaming=True)``): nothing is
converted or cached beyond the files the Hub serves, and memory stays flat. Rows
map onto papers with the tabular field names (:mod:`ingest.record_fields`); the
split defaults to ``train``. The Hub address and offline mode are
huggingface_hub's own settings (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``). Before
``datasets`` is asked, one short request checks that the Hub answers at all:
``datasets`` retries a refused connection for about 20 s, and an offline user
should hear at once.

>>> parse_hf_spec("hf:allenai/scifact:corpus"), parse_hf_spec("hf:someone/papers")
(('allenai/scifact', 'corpus'), ('someone/papers', 'train'))
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice
from urllib.parse import quote

from ingest.formats_tabular import keep_row
from ingest.records import Paper
from ingest.source_types import ReadOptions, Rejection
from models.errors import UnavailableError

DEFAULT_SPLIT = "train"


def parse_hf_spec(spec: str) -> tuple[str, str]:
    """``(dataset, split)`` of an ``hf:`` spec; ValueError when it names no dataset."""
    body = spec.removeprefix("hf:").strip()
    dataset, _, split = body.partition(":")
    if not dataset.strip():
        raise ValueError(f"{spec!r} names no dataset: use hf:<owner>/<dataset>[:<split>]")
    return dataset.strip(), split.strip() or DEFAULT_SPLIT


def read_hf(spec: str, options: ReadOptions) -> Iterator[Paper | Rejection]:
    """Stream a Hub dataset's rows as papers; raises UnavailableError when the Hub cannot be used."""
    try:
        dataset, split = parse_hf_spec(spec)
    except ValueError as exc:
        yield Rejection(spec, None, str(exc))
        return
    rows = _open_rows(dataset, split, options)
    if isinstance(rows, Rejection):
        yield replace(rows, source=spec)
        return
    from datasets.exceptions import DatasetsError  # already imported by _open_rows

    number = 0
    try:
        for number, row in enumerate(islice(rows, options.max_results), 1):
            kept = keep_row(row, spec, number, options)
            if kept is not None:
                yield kept
    except (ConnectionError, TimeoutError) as exc:
        raise UnavailableError(f"lost the connection to the Hugging Face Hub while reading {dataset}: {exc}") from None
    except (ValueError, OSError, DatasetsError) as exc:  # a file that datasets cannot decode or cast
        yield Rejection(spec, number + 1, f"cannot read the dataset's rows from here on: {str(exc)[:300]}")


def _open_rows(dataset: str, split: str, options: ReadOptions) -> Iterable[dict] | Rejection:
    try:
        from huggingface_hub import constants
    except ImportError:
        raise UnavailableError("hf: sources need the 'datasets' package: pip install -r requirements.txt") from None
    if constants.HF_HUB_OFFLINE:
        raise UnavailableError(f"cannot read hf:{dataset}: Hugging Face Hub offline mode is on (HF_HUB_OFFLINE=1)")
    _check_reachable(constants.ENDPOINT, dataset, options.timeout_s)
    try:
        import datasets  # heavy: imported only once the Hub is known to answer
    except ImportError:
        raise UnavailableError("hf: sources need the 'datasets' package: pip install -r requirements.txt") from None
    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(dataset, split=split, streaming=True)
    except datasets.exceptions.DatasetNotFoundError:
        raise UnavailableError(f"dataset {dataset} does not exist on the Hub at {constants.ENDPOINT} "
                               "or needs a login (huggingface-cli login)") from None
    except ConnectionError as exc:
        raise UnavailableError(f"cannot read hf:{dataset} from {constants.ENDPOINT}: {exc}") from None
    except ValueError as exc:  # an unknown split, or files datasets cannot read
        return Rejection("", None, f"cannot read split {split!r} of {dataset}: {exc}")


def _check_reachable(endpoint: str, dataset: str, timeout_s: float) -> None:
    """Any HTTP answer will do (even 401/404: ``datasets`` reports those better); no answer fails."""
    url = f"{endpoint.rstrip('/')}/api/datasets/{quote(dataset)}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=min(timeout_s, 10)):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UnavailableError(f"the Hugging Face Hub cannot be reached at {endpoint}: {reason}. "
                               "Check the network connection, or HF_ENDPOINT.") from None
