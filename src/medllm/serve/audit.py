"""Append-only JSONL audit log with a SHA-256 hash chain.

Each record stores the hash of the previous record (``prev``) and its own hash
(``hash`` = SHA-256 of ``prev`` + the canonical JSON of the record without
``hash``), so editing, deleting or reordering any line breaks the chain from
that line on. Prompts and responses are stored as SHA-256 unless full text is
enabled. Appends (not temp+rename) are deliberate: the log only ever grows and
each record is flushed and fsynced before the response is considered done.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

GENESIS = "0" * 64


def _canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(prev: str, record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256((prev + _canonical(body)).encode("utf-8")).hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuditLog:
    def __init__(self, path: str | Path, *, full_text: bool = False):
        self.path = Path(path)
        self.full_text = full_text
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        problems = verify_audit_log(self.path) if self.path.is_file() else []
        if problems:
            raise ValueError(f"audit log {self.path} fails verification, refusing to extend it: {problems[0]}")
        self._prev = _last_hash(self.path)

    def append(self, *, user: str, endpoint: str, model: str, adapter: str | None, model_sha256: str,
               prompt: str, response: str, prompt_tokens: int, completion_tokens: int,
               status: int, finish_reason: str | None = None, red_flags: list[str] | None = None) -> dict:
        rec = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
            "user": user, "endpoint": endpoint, "model": model, "adapter": adapter,
            "model_sha256": model_sha256, "status": status, "finish_reason": finish_reason,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "prompt_sha256": sha256_text(prompt), "response_sha256": sha256_text(response),
            "red_flags": red_flags or [],
        }
        if self.full_text:
            rec["prompt"], rec["response"] = prompt, response
        with self._lock:
            rec["prev"] = self._prev
            rec["hash"] = record_hash(self._prev, rec)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(_canonical(rec) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._prev = rec["hash"]
        return rec


def _last_hash(path: Path) -> str:
    if not path.is_file():
        return GENESIS
    last = GENESIS
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                last = json.loads(line)["hash"]
    return last


def verify_audit_log(path: str | Path) -> list[str]:
    """Return problems as ``file:line: ...`` (empty when the chain is intact)."""
    path = Path(path)
    problems: list[str] = []
    prev = GENESIS
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{lineno}: not JSON ({exc.msg})")
                break
            if not isinstance(rec, dict) or "hash" not in rec or "prev" not in rec:
                problems.append(f"{path}:{lineno}: not an audit record (no hash/prev)")
                break
            if rec["prev"] != prev:
                problems.append(f"{path}:{lineno}: chain broken (prev does not match the previous record's "
                                "hash: a record was removed, inserted or reordered)")
                break
            if record_hash(prev, rec) != rec["hash"]:
                problems.append(f"{path}:{lineno}: record hash mismatch (the record was edited)")
                break
            prev = rec["hash"]
    return problems
