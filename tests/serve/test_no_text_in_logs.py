"""A prompt with a person's name and a phone number: by default neither reaches the server's
logs, its error responses or the audit file; ``audit_full_text`` + ``audit_deid`` write the text
with both replaced."""
from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from medllm.config.serve import ServeConfig
from medllm.serve import create_app
from medllm.serve.audit import load_or_create_key, verify_audit_log

NAME, PHONE = "Rafael Okonkwo", "617-555-0142"
PROMPT = f"Mr. {NAME} can be reached at {PHONE}. Is his INR of 3.1 too high on warfarin?"
SECRETS = ("Rafael", "Okonkwo", PHONE, "555-0142")


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _app(served_run, config):
    app = create_app(config, served_run)

    @app.get("/v1/boom")   # an unexpected server error whose message quotes the prompt
    async def boom():
        raise RuntimeError(f"could not handle {PROMPT!r}")

    return TestClient(app, raise_server_exceptions=False)


def test_name_and_phone_never_reach_logs_errors_or_default_audit(served_run, tmp_path, caplog, capfd):
    log = tmp_path / "audit.jsonl"
    c = _app(served_run, ServeConfig(audit_log=str(log), max_body_bytes=4000, max_prompt_tokens=200))
    caplog.set_level(logging.DEBUG)
    user = {"role": "user", "content": PROMPT}
    assert c.post("/v1/chat/completions", json={"messages": [user], "max_tokens": 3}).status_code == 200
    r = c.post("/v1/completions", json={"prompt": PROMPT, "max_tokens": 3, "stream": True})
    assert r.status_code == 200
    refused = [
        c.post("/v1/chat/completions", content=b'{"messages": [{"role": "user", "content": "' + PROMPT.encode()),
        c.post("/v1/chat/completions", json={"messages": [{"role": "patient", "content": PROMPT}]}),
        c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": {"text": PROMPT}}]}),
        c.post("/v1/chat/completions", json={"messages": [user], "max_tokens": "many"}),
        c.post("/v1/chat/completions", json={"messages": [user], "model": PROMPT[:200]}),
        c.post("/v1/chat/completions", json={"messages": [user], "stop": [PROMPT] * 5}),
        c.post("/v1/completions", json={"prompt": [PROMPT, PROMPT]}),
        c.post("/v1/completions", json={"prompt": PROMPT * 12}),                     # too many tokens
        c.post("/v1/completions", json={"prompt": PROMPT * 60}),                     # 413
        c.get("/v1/boom"),                                                           # 500
    ]
    assert [r.status_code for r in refused] == [400, 400, 400, 400, 404, 400, 400, 400, 413, 500]
    for r in refused:
        assert r.json()["error"]["message"] and not _leaks(r.text), r.text
    assert "RuntimeError" in caplog.text                  # the failure is logged, its message is not
    assert not _leaks(caplog.text), caplog.text
    out, err = capfd.readouterr()
    assert not _leaks(out + err)
    text = log.read_text()
    assert len(text.splitlines()) == 12 and not _leaks(text) and "warfarin" not in text
    assert verify_audit_log(log, load_or_create_key(tmp_path / "audit.jsonl.key")) == []


@pytest.mark.parametrize("deid", [False, True])
def test_full_text_audit_deidentifies_when_asked(served_run, tmp_path, deid):
    log = tmp_path / "audit.jsonl"
    c = _app(served_run, ServeConfig(audit_log=str(log), audit_full_text=True, audit_deid=deid))
    assert c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": PROMPT}],
                                                "max_tokens": 3}).status_code == 200
    assert c.post("/v1/completions", json={"prompt": PROMPT, "max_tokens": 3}).status_code == 200
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(recs) == 2 and all(isinstance(r["response"], str) for r in recs)
    if not deid:   # the operator asked for raw text: it is there (so the check below can see a leak)
        assert all(PROMPT in r["prompt"] for r in recs)
        return
    for r in recs:
        assert r["deidentified"] is True and not _leaks(r["prompt"] + r["response"]), r["prompt"]
        assert "[NAME]" in r["prompt"] and "[PHONE]" in r["prompt"]
        assert "INR of 3.1 too high on warfarin" in r["prompt"]     # the clinical question survives
    assert not _leaks(log.read_text())
    assert verify_audit_log(log, load_or_create_key(tmp_path / "audit.jsonl.key")) == []
