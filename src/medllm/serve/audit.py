"""Append-only JSONL audit log, sealed with an HMAC-SHA-256 chain.

Each record stores the previous record's MAC (``prev``) and its own (``hash`` =
HMAC-SHA-256(key, ``prev`` + canonical JSON of the record without ``hash``)). The key lives in
a separate file (created 0600, never in the log), so someone who can rewrite the log cannot
recompute the chain. Editing, inserting, deleting or reordering a record breaks it; cutting
records off the end is caught by the head file (``<log>.head``: record count and last MAC,
itself MACed), rewritten atomically on every append. The log rotates by size: ``audit.jsonl``
becomes ``audit.jsonl.1`` (older ``.1`` -> ``.2`` ...), and the new file's first record chains to
the last record of the rotated one, so ``audit-verify`` follows one chain across all files.

Prompts and responses are stored as SHA-256 unless full text is enabled (then optionally
de-identified first). Appends are flushed and fsynced before the response is considered done."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from pathlib import Path

from medllm.io import atomic_write_text

GENESIS = "0" * 64


def _canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(prev: str, record: dict, key: bytes) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hmac.new(key, (prev + _canonical(body)).encode("utf-8"), hashlib.sha256).hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_or_create_key(path: str | Path) -> bytes:
    """The HMAC key (hex in a file). Created with 0600 permissions when absent."""
    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    raw = path.read_text().strip()
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        raise ValueError(f"{path}: audit key must be hex (create a fresh one by giving a path that does not exist)") from None
    if len(key) < 16:
        raise ValueError(f"{path}: audit key shorter than 16 bytes")
    return key


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def _head_mac(key: bytes, count: int, last: str) -> str:
    return hmac.new(key, f"head:{count}:{last}".encode(), hashlib.sha256).hexdigest()


def log_files(path: str | Path) -> list[Path]:
    """Oldest first: ``log.N`` ... ``log.1``, ``log``."""
    path = Path(path)
    rotated = []
    i = 1
    while path.with_name(f"{path.name}.{i}").is_file():
        rotated.append(path.with_name(f"{path.name}.{i}"))
        i += 1
    return [*reversed(rotated), *([path] if path.is_file() else [])]


class AuditLog:
    def __init__(self, path: str | Path, *, key_file: str | Path | None = None, full_text: bool = False,
                 deid=None, max_bytes: int | None = None):
        self.path = Path(path)
        self.full_text, self.deid, self.max_bytes = full_text, deid, max_bytes
        self.key = load_or_create_key(key_file or self.path.with_name(self.path.name + ".key"))
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if log_files(self.path):
            problems = verify_audit_log(self.path, self.key)
            if problems:
                raise ValueError(f"audit log {self.path} fails verification, refusing to extend it: {problems[0]}")
        self._count, self._prev = _chain_end(self.path)

    def append(self, *, user: str, endpoint: str, model: str, adapter: str | None = None, model_sha256: str = "",
               prompt: str = "", response: str = "", prompt_tokens: int = 0, completion_tokens: int = 0,
               status: int, finish_reason: str | None = None, red_flags: list[str] | None = None,
               client: str | None = None, error: str | None = None) -> dict:
        rec = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
            "user": user, "client": client, "endpoint": endpoint, "model": model, "adapter": adapter,
            "model_sha256": model_sha256, "status": status, "finish_reason": finish_reason, "error": error,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "prompt_sha256": sha256_text(prompt), "response_sha256": sha256_text(response),
            "red_flags": red_flags or [],
        }
        if self.full_text:
            if self.deid is not None:   # de-identify before the text ever reaches the disk
                prompt, response = self.deid.deidentify(prompt)[0], self.deid.deidentify(response)[0]
                rec["deidentified"] = True
            rec["prompt"], rec["response"] = prompt, response
        with self._lock:
            rec["seq"] = self._count + 1
            rec["prev"] = self._prev
            rec["hash"] = record_hash(self._prev, rec, self.key)
            line = _canonical(rec) + "\n"
            if self.max_bytes and self.path.is_file() and self.path.stat().st_size + len(line) > self.max_bytes:
                self._rotate()
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self._count, self._prev = rec["seq"], rec["hash"]
            self._write_head()
        return rec

    def _rotate(self) -> None:
        files = log_files(self.path)
        for f in files[:-1]:   # log.N -> log.N+1, highest N first so nothing is overwritten
            n = int(f.name.rsplit(".", 1)[1])
            f.rename(f.with_name(f"{self.path.name}.{n + 1}"))
        self.path.rename(self.path.with_name(self.path.name + ".1"))

    def _write_head(self) -> None:
        head = {"count": self._count, "last": self._prev, "mac": _head_mac(self.key, self._count, self._prev)}
        atomic_write_text(_head_path(self.path), json.dumps(head) + "\n")


def _chain_end(path: Path) -> tuple[int, str]:
    count, last = 0, GENESIS
    for f in log_files(path):
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    count, last = count + 1, json.loads(line)["hash"]
    return count, last


def verify_audit_log(path: str | Path, key: bytes | None = None) -> list[str]:
    """Problems as ``file:line: ...`` (empty when the chain and the head agree). ``key=None`` checks
    only the linkage, which a forger who rewrote every record would pass: say so to the user."""
    path = Path(path)
    problems: list[str] = []
    prev, count = GENESIS, 0
    for f in log_files(path):
        with open(f, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    return [f"{f}:{lineno}: not JSON ({exc.msg})"]
                if not isinstance(rec, dict) or "hash" not in rec or "prev" not in rec:
                    return [f"{f}:{lineno}: not an audit record (no hash/prev)"]
                if rec["prev"] != prev or rec.get("seq", count + 1) != count + 1:
                    return [f"{f}:{lineno}: chain broken (a record was removed, inserted or reordered here)"]
                if key is not None and not hmac.compare_digest(record_hash(prev, rec, key), rec["hash"]):
                    return [f"{f}:{lineno}: record MAC mismatch (the record was edited, or the chain was "
                            "recomputed without the key)"]
                prev, count = rec["hash"], count + 1
    head_file = _head_path(path)
    if key is not None:
        if not head_file.is_file():
            if count:
                problems.append(f"{head_file}: head record missing (cannot rule out truncation)")
            return problems
        try:
            head = json.loads(head_file.read_text())
        except json.JSONDecodeError:
            return [f"{head_file}: not JSON"]
        if not hmac.compare_digest(_head_mac(key, head.get("count", -1), head.get("last", "")), head.get("mac", "")):
            problems.append(f"{head_file}: head MAC mismatch (the head was forged or edited)")
        elif head["count"] != count or head["last"] != prev:
            problems.append(f"{path}: log ends at record {count} but the signed head says {head['count']} "
                            "(records were cut off the end, or a rotated file is missing)")
    return problems


def open_audit(config) -> AuditLog:
    """The server's audit log from its ``ServeConfig`` (key file, rotation, de-identified full text)."""
    deid = None
    if config.audit_full_text and config.audit_deid:
        from medllm.data.deid.engine import Deidentifier

        deid = Deidentifier(mode="mask")
    return AuditLog(config.audit_log, key_file=config.audit_key_file, full_text=config.audit_full_text,
                    deid=deid, max_bytes=config.audit_max_bytes)
