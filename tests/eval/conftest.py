"""Scripted backends: tests check metrics against hand-computed values, so the model's
answers must be known. The real HF/HTTP backends have their own tests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


class ScriptedBackend:
    """generate(): the answer whose key occurs in the last user message; loglik(): per-context scores."""

    name = "scripted"
    dtype = "none"

    def __init__(self, answers: dict[str, str] | None = None, logliks: dict[str, list[float]] | None = None):
        self.answers = answers or {}
        self.logliks = logliks or {}
        self.calls = 0

    def generate(self, chats, max_new_tokens):
        self.calls += 1
        out = []
        for chat in chats:
            text = chat[-1]["content"]
            hits = [v for k, v in self.answers.items() if k in text]
            out.append(hits[0] if hits else "")
        return out

    def loglik(self, requests):
        self.calls += 1
        out = []
        for req in requests:
            key = next(k for k in self.logliks if k in req.context)
            out.append([(v, False) for v in self.logliks[key]])
        return out


class Factory:
    def __init__(self, backend):
        self.backend = backend
        self.model_id = "scripted"

    def __call__(self):
        return self.backend


@pytest.fixture
def scripted():
    return lambda **kw: Factory(ScriptedBackend(**kw))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
