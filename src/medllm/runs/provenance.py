"""What a run needs to be reproduced: package versions, git revision, input data hashes."""
from __future__ import annotations

import functools
import os
import subprocess
from importlib import metadata
from pathlib import Path

from medllm.io import sha256_file

PACKAGES = ("medllm", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "tokenizers",
            "safetensors", "pydantic", "datasketch", "presidio-analyzer", "fastapi", "llama-cpp-python")


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision(where: str | Path | None = None) -> dict:
    """Revision of the source checkout medllm runs from, and whether it had local edits.
    A pip-installed medllm (no checkout) reports ``None`` rather than failing."""
    where = Path(where) if where else Path(__file__).resolve().parent
    info = {"revision": None, "dirty": None}
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if rev.returncode == 0:
            info["revision"] = rev.stdout.strip()
            st = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                                capture_output=True, text=True, timeout=10)
            info["dirty"] = bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, computed once per process for an unchanged file: the run folder
    (inputs.json) and the data stage's manifest both record the same corpus files, which can
    be many GB."""
    st = os.stat(path)
    return _sha256_of(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def hash_inputs(paths: list[str]) -> dict[str, dict]:
    """sha256 and size of each input file (every file of a folder input). Built-in sets
    (``builtin:…``) are versioned with medllm itself and recorded as such; a missing path is
    recorded as missing, not an error (validation has already run)."""
    out: dict[str, dict] = {}
    for text in paths:
        if text.startswith("builtin:"):
            out[text] = {"builtin": True}
            continue
        p = Path(text).expanduser()
        if p.is_file():
            out[text] = {"sha256": file_sha256(p), "bytes": p.stat().st_size}
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            out[text] = {"files": {str(f.relative_to(p)): {"sha256": file_sha256(f), "bytes": f.stat().st_size}
                                   for f in files}}
        else:
            out[text] = {"missing": True}
    return out


def recipe_inputs(recipe) -> list[str]:
    paths = [s.path for s in recipe.data.sources]
    paths += [t.path for t in recipe.eval.tasks if getattr(t, "path", None)]
    return list(dict.fromkeys(paths))
