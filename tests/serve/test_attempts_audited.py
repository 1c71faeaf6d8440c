"""Every attempt leaves one audit record, refused ones included, and the limits bind anonymous
clients too (per client address)."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from medllm.config.serve import ServeConfig
from medllm.serve import create_app
from medllm.serve.audit import load_or_create_key, verify_audit_log
from medllm.serve.security import add_key

CHAT = {"messages": [{"role": "user", "content": "Dose of amoxicillin for otitis?"}], "max_tokens": 2}


def _records(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture()
def client_for(served_run):
    made = []

    def make(config, address="10.0.0.5"):
        c = TestClient(create_app(config, served_run), raise_server_exceptions=False, client=(address, 40000))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_a_probe_of_malformed_requests_leaves_one_record_each(client_for, tmp_path):
    keys, log = tmp_path / "keys.txt", tmp_path / "audit.jsonl"
    alice = add_key(keys, "alice")
    ok = {"Authorization": f"Bearer {alice}"}
    probe = [   # (headers, method, path, body or raw bytes, expected status)
        ({}, "POST", "/v1/chat/completions", CHAT, 401),                                   # missing key
        ({"Authorization": "Bearer mk-wrong"}, "POST", "/v1/chat/completions", CHAT, 401),  # bad key
        ({"Authorization": alice}, "GET", "/v1/models", None, 401),                        # no "Bearer"
        (ok, "POST", "/v1/chat/completions", b'{"messages": [', 400),                      # invalid JSON
        (ok, "POST", "/v1/chat/completions", b"[1, 2]", 400),                              # not an object
        (ok, "POST", "/v1/chat/completions", {"messages": "hello"}, 400),                  # wrong type
        (ok, "POST", "/v1/chat/completions", {**CHAT, "max_tokens": "ten"}, 400),          # wrong type
        (ok, "POST", "/v1/completions", {"prompt": ["a", "b"]}, 400),                      # two prompts
        (ok, "POST", "/v1/chat/completions", {**CHAT, "max_tokens": 10**6}, 400),          # over the limit
        (ok, "POST", "/v1/chat/completions", {**CHAT, "model": "no-such-model"}, 404),     # unknown model
        (ok, "POST", "/v1/chat/completions", b"x" * 5000, 413),                            # over-size body
        (ok, "GET", "/v1/nothing-here", None, 404),                                        # unknown route
        (ok, "POST", "/v1/chat/completions", CHAT, 200),                                   # the one success
    ]
    authorised = sum(1 for h, *_ in probe if h is ok)
    c = client_for(ServeConfig(api_keys_file=str(keys), audit_log=str(log), max_body_bytes=2000,
                               rate_limit_per_minute=authorised - 1))   # unknown routes skip auth
    probe.append((ok, "GET", "/v1/models", None, 429))                                      # rate-limited
    got = []
    for headers, method, path, body, _ in probe:
        raw = body if isinstance(body, bytes) else None
        r = c.request(method, path, headers=headers, content=raw, json=None if raw is not None else body)
        got.append(r.status_code)
    assert got == [p[-1] for p in probe]
    recs = _records(log)
    assert [r["status"] for r in recs] == got            # one record per attempt, in order
    # who: nobody before a key is accepted (and on a route that needs none), else the key's user
    assert [r["user"] for r in recs] == ["unauthenticated" if h is not ok or p == "/v1/nothing-here" else "alice"
                                         for h, _, p, *_ in probe]
    assert all(r["client"] == "10.0.0.5" for r in recs if r["status"] != 200)
    assert recs[-1]["error"] == "rate_limit_exceeded" and recs[1]["error"] == "invalid_api_key"
    assert verify_audit_log(log, load_or_create_key(tmp_path / "audit.jsonl.key")) == []


def test_anonymous_clients_are_rate_limited_per_address(client_for, tmp_path):
    log = tmp_path / "audit.jsonl"
    config = ServeConfig(audit_log=str(log), rate_limit_per_minute=3)
    a = client_for(config, "10.0.0.7")
    codes = [a.get("/v1/models").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = a.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # another address has its own budget (same app: the limiter is per app)
    b = TestClient(a.app, raise_server_exceptions=False, client=("10.0.0.8", 40000))
    try:
        assert b.get("/v1/models").status_code == 200
    finally:
        b.close()
    refused = [r for r in _records(log) if r["status"] == 429]
    assert len(refused) == 2 and all(r["client"] == "10.0.0.7" and r["user"] == "unauthenticated" for r in refused)


def test_anonymous_requests_meet_body_and_token_limits(client_for, tmp_path):
    log = tmp_path / "audit.jsonl"
    c = client_for(ServeConfig(audit_log=str(log), max_body_bytes=2000, max_prompt_tokens=16,
                               max_completion_tokens=8))
    assert c.post("/v1/completions", content=b"x" * 3000).status_code == 413
    long = c.post("/v1/completions", json={"prompt": "fever " * 200, "max_tokens": 2})
    assert long.status_code == 400 and long.json()["error"]["code"] == "context_length_exceeded"
    assert c.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 9}).status_code == 400
    assert c.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2}).status_code == 200
    assert [r["status"] for r in _records(log)] == [413, 400, 400, 200]


def test_failed_keys_are_rate_limited_per_address(client_for, tmp_path):
    """Guessing keys meets the same per-minute limit as using one."""
    keys = tmp_path / "keys.txt"
    alice = add_key(keys, "alice")
    c = client_for(ServeConfig(api_keys_file=str(keys), rate_limit_per_minute=3))
    codes = [c.get("/v1/models", headers={"Authorization": f"Bearer mk-guess{i}"}).status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]
    assert c.get("/v1/models", headers={"Authorization": f"Bearer {alice}"}).status_code == 200
