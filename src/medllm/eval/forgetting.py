"""Forgetting probe: perplexity on held-out DOMAIN text and held-out GENERAL text.

Continual pretraining on medical text should lower domain perplexity; if general
perplexity rises a lot, the model paid for it in general ability (the reason Me-LLaMA mixes
general data back in, 15:1:4). Comparing two runs' ``forgetting`` blocks shows it.
Text files: ``.txt`` (blank-line separated passages) or ``.jsonl`` with a ``text`` field.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from medllm.eval.loaders import TaskDataError


def read_texts(path: str | Path, limit: int | None = None) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise TaskDataError(f"{path}: file not found (forgetting probe text)")
    texts = []
    if path.suffix == ".jsonl":
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskDataError(f"{path}:{i}: invalid JSON ({exc.msg})") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                raise TaskDataError(f"{path}:{i}: field 'text': missing or not a string")
            texts.append(rec["text"])
    else:
        texts = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    if not texts:
        raise TaskDataError(f"{path}: no text found")
    return texts[:limit] if limit else texts


def perplexity(backend, texts: list[str], max_len: int = 512) -> dict:
    rows = backend.token_nll(texts, max_len=max_len)
    nll, n = sum(r[0] for r in rows), sum(r[1] for r in rows)
    return {"perplexity": round(math.exp(nll / max(n, 1)), 4), "tokens": n, "texts": len(texts)}


def run_forgetting(backend_factory, *, domain: str | Path, general: str | Path, limit: int | None = 200,
                   max_len: int = 512) -> dict:
    backend = backend_factory()
    return {"domain": {"path": str(domain), **perplexity(backend, read_texts(domain, limit), max_len)},
            "general": {"path": str(general), **perplexity(backend, read_texts(general, limit), max_len)}}
