"""Shared fixtures. Tests run offline, quiet, with their own MEDLLM_HOME cache
(inside .pytest_cache, so a clean clone builds the tiny models once in seconds)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MEDLLM_HOME", str(REPO / ".pytest_cache" / "medllm_home"))
os.environ.setdefault("MEDLLM_QUIET", "1")

import medllm  # noqa: E402,F401  (offline guard before transformers is imported)

SHARED_DATA = Path(os.environ.get("MEDLLM_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real public medical data); tests using it skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from medllm.models import ensure_local

    return ensure_local("tiny-llama")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from medllm.models import load_tokenizer

    return load_tokenizer(tiny_model_dir)
