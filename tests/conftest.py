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
from medllm.paths import apply_quiet  # noqa: E402

apply_quiet()

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


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Fail on any connection to a non-loopback address (and any DNS lookup of a
    non-local name); returns the list of attempts, which must stay empty."""
    import ipaddress
    import socket

    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def is_local(host) -> bool:
        if host in ("localhost", "", None):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def guarded_connect(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_local(host):
            attempts.append(f"connect {address}")
            raise NetworkAttempt(f"network connection attempted: {address}")
        return real_connect(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not is_local(host):
            attempts.append(f"dns {host}")
            raise NetworkAttempt(f"DNS lookup attempted: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return attempts
