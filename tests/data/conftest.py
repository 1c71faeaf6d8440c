"""Helpers for the data tests: write small files in every supported layout."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def jsonl(tmp_path):
    def make(name: str, rows: list) -> Path:
        return write_jsonl(tmp_path / name, rows)
    return make
