"""Auth (hashed keys, per-user identity), rate limits, audit log, loopback default (tamper tests: test_audit_chain.py)."""
from __future__ import annotations

import json

import pytest

from medllm.config.serve import ServeConfig
from medllm.serve.audit import AuditLog, verify_audit_log
from medllm.serve.security import KeyFileError, KeyStore, add_key

CHAT = {"messages": [{"role": "user", "content": "Is ibuprofen safe in pregnancy?"}], "max_tokens": 4}


@pytest.fixture()
def keyfile(tmp_path):
    path = tmp_path / "keys.txt"
    alice = add_key(path, "alice")
    bob = add_key(path, "bob")
    return path, alice, bob


def test_keys_are_stored_hashed(keyfile):
    path, alice, bob = keyfile
    text = path.read_text()
    assert alice not in text and bob not in text
    store = KeyStore.load(path)
    assert store.user_for(alice) == "alice" and store.user_for(bob) == "bob"
    assert store.user_for(alice + "x") is None and store.user_for("") is None


def test_bad_key_file_reports_line(tmp_path):
    bad = tmp_path / "keys.txt"
    bad.write_text("# comment\nalice sha256:abc\n")
    with pytest.raises(KeyFileError, match=r"keys.txt:2:"):
        KeyStore.load(bad)


def test_unauthenticated_and_bad_key_rejected(make_client, keyfile):
    path, alice, _ = keyfile
    c = make_client(ServeConfig(api_keys_file=str(path)))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": alice},
                    {"Authorization": "Basic " + alice}):
        for method, url, body in (("GET", "/v1/models", None), ("POST", "/v1/chat/completions", CHAT),
                                  ("POST", "/v1/completions", {"prompt": "Hi"})):
            r = c.request(method, url, json=body, headers=headers)
            assert r.status_code == 401, (headers, url)
            assert r.json()["error"]["type"] == "authentication_error"
    ok = c.post("/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {alice}"})
    assert ok.status_code == 200
    assert c.get("/health").status_code == 200   # liveness needs no key


def test_rate_limit_per_key(make_client, keyfile):
    path, alice, bob = keyfile
    c = make_client(ServeConfig(api_keys_file=str(path), rate_limit_per_minute=3))
    a = {"Authorization": f"Bearer {alice}"}
    codes = [c.get("/v1/models", headers=a).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = c.get("/v1/models", headers=a)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert c.get("/v1/models", headers={"Authorization": f"Bearer {bob}"}).status_code == 200


def test_audit_log_records_user_hashes_and_verifies(make_client, keyfile, tmp_path):
    path, alice, bob = keyfile
    log = tmp_path / "audit.jsonl"
    c = make_client(ServeConfig(api_keys_file=str(path), audit_log=str(log)))
    c.post("/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {alice}"})
    c.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 3, "model": "demo/sft", "stream": True},
           headers={"Authorization": f"Bearer {bob}"})
    c.app.state.audit = None
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["user"] for r in recs] == ["alice", "bob"]
    assert recs[1]["adapter"] == "demo/sft" and recs[1]["model_sha256"] != recs[0]["model_sha256"]
    assert all(len(r["prompt_sha256"]) == 64 and len(r["response_sha256"]) == 64 for r in recs)
    assert all("prompt" not in r and "response" not in r for r in recs)   # full text is opt-in
    assert "ibuprofen" not in log.read_text()
    assert recs[0]["completion_tokens"] >= 1
    assert verify_audit_log(log) == []


def test_cli_refuses_remote_bind_without_keys_and_verifies_audit(tmp_path):
    from typer.testing import CliRunner

    from medllm.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["serve", "tiny-llama", "--host", "0.0.0.0"])
    assert r.exit_code == 1 and "refusing to bind" in r.output
    keys = tmp_path / "k.txt"
    r = runner.invoke(app, ["serve-key", "carol", "--api-keys", str(keys)])
    assert r.exit_code == 0 and KeyStore.load(keys).user_for(r.output.strip()) == "carol"
    log = tmp_path / "a.jsonl"
    AuditLog(log).append(user="u", endpoint="e", model="m", adapter=None, model_sha256="", prompt="x",
                         response="y", prompt_tokens=1, completion_tokens=1, status=200)
    assert runner.invoke(app, ["audit-verify", str(log)]).exit_code == 0
    log.write_text(log.read_text().replace('"user":"u"', '"user":"v"'))
    r = runner.invoke(app, ["audit-verify", str(log)])
    assert r.exit_code == 1 and "a.jsonl:1" in r.output


def test_serve_check_verifies_manifest(tiny_model_dir, tmp_path):
    import shutil

    from medllm.serve.models import check_model_files

    assert check_model_files(tiny_model_dir, {}) == []
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    problems = check_model_files(copy, {})
    assert problems and "sha256 mismatch" in problems[0]
