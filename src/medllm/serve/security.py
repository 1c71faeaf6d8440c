"""API keys (stored hashed, one user per key) and per-key rate limiting.

Key file format, one key per line (``#`` starts a comment)::

    alice sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08

Keys are long random tokens (``mk-`` + 32 random bytes), so a plain SHA-256 is
enough: a slow password hash protects guessable secrets, these are not.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

from medllm.io import atomic_write_text

KEY_PREFIX = "mk-"


class KeyFileError(ValueError):
    pass


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """Maps a presented bearer key to a user id; ``None`` store means auth is off."""

    def __init__(self, hashes: dict[str, str]):
        self._by_hash = hashes  # "sha256:..." -> user

    @classmethod
    def load(cls, path: str | Path) -> "KeyStore":
        path = Path(path)
        if not path.is_file():
            raise KeyFileError(f"API key file not found: {path}")
        hashes: dict[str, str] = {}
        for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].startswith("sha256:") or len(parts[1]) != 7 + 64:
                raise KeyFileError(f"{path}:{lineno}: expected 'USER sha256:<64 hex>' "
                                   "(create entries with `medllm serve-key USER --api-keys FILE`)")
            user, digest = parts
            if digest in hashes:
                raise KeyFileError(f"{path}:{lineno}: duplicate key hash (also used by {hashes[digest]!r})")
            hashes[digest] = user
        if not hashes:
            raise KeyFileError(f"{path}: no keys (an empty key file would lock everyone out)")
        return cls(hashes)

    def user_for(self, presented: str | None) -> str | None:
        if not presented:
            return None
        digest = hash_key(presented)
        for known, user in self._by_hash.items():   # constant-time compare per entry
            if hmac.compare_digest(known, digest):
                return user
        return None

    @property
    def users(self) -> list[str]:
        return sorted(set(self._by_hash.values()))


def add_key(path: str | Path, user: str) -> str:
    """Create a new key for ``user``, append its hash to ``path``, return the plain key (shown once)."""
    if not user or any(c.isspace() for c in user) or "#" in user:
        raise KeyFileError(f"user id {user!r} must be non-empty without spaces or '#'")
    path = Path(path)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    old = path.read_text(encoding="utf-8") if path.is_file() else "# medllm API keys: USER sha256:HASH\n"
    if old and not old.endswith("\n"):
        old += "\n"
    atomic_write_text(path, old + f"{user} {hash_key(key)}\n")
    path.chmod(0o600)
    return key


class RateLimiter:
    """Sliding one-minute window of request times per user."""

    def __init__(self, per_minute: int, window_s: float = 60.0):
        self.per_minute = per_minute
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, user: str) -> tuple[bool, float]:
        """Return (allowed, seconds until a slot frees up)."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[user]
            while hits and now - hits[0] >= self.window_s:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return False, max(0.0, self.window_s - (now - hits[0]))
            hits.append(now)
            return True, 0.0


def client_address(request) -> str:
    return request.client.host if request.client else "unknown"


def audit_rejection(audit, request, status: int, reason: str | None) -> None:
    """An audit record for a refused request (bad key, invalid body, 413, 429...): who tried what,
    never the body (it was not accepted, and may hold patient text)."""
    if audit is None:
        return
    try:
        audit.append(user=getattr(request.state, "user", None) or "unauthenticated", endpoint=request.url.path,
                     model="", status=status, error=reason, client=client_address(request))
    except Exception:   # auditing a rejection must never turn it into a 500
        import logging

        logging.getLogger(__name__).exception("could not audit a rejected request")
