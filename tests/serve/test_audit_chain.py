"""The keyed audit chain: every kind of tampering is detected with the key; rotation keeps one chain."""
import json
import os
import stat

import pytest

from medllm.serve.audit import GENESIS, AuditLog, _canonical, load_or_create_key, log_files, verify_audit_log


def _fill(log, n=4, **kw):
    audit = AuditLog(log, full_text=True, **kw)
    for i in range(n):
        audit.append(user=f"u{i}", endpoint="/v1/chat/completions", model="m", prompt=f"p{i}", response=f"r{i}",
                     prompt_tokens=3, completion_tokens=5, status=200)
    return audit, load_or_create_key(log.with_name(log.name + ".key"))


def test_key_file_is_private_and_outside_the_log(tmp_path):
    log = tmp_path / "audit.jsonl"
    _, key = _fill(log, 1)
    key_file = tmp_path / "audit.jsonl.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert key.hex() not in log.read_text() and key.hex() not in (tmp_path / "audit.jsonl.head").read_text()


def test_intact_log_verifies_and_each_tampering_is_detected(tmp_path):
    log = tmp_path / "audit.jsonl"
    _, key = _fill(log)
    lines = log.read_text().splitlines()
    assert verify_audit_log(log, key) == []

    def check(new_lines, expect):
        log.write_text("\n".join(new_lines) + "\n")
        problems = verify_audit_log(log, key)
        assert problems and expect in problems[0], problems

    check([lines[0], lines[1].replace('"completion_tokens":5', '"completion_tokens":6'), *lines[2:]],
          "audit.jsonl:2: record MAC mismatch")                                   # edit
    check(lines[:1] + lines[2:], "audit.jsonl:2: chain broken")                  # delete
    check([lines[1], lines[0], *lines[2:]], "audit.jsonl:1: chain broken")      # reorder
    check(lines[:2], "records were cut off the end")                             # truncate

    # recompute-without-key: a forger rewrites a record and rebuilds every hash with plain SHA-256 / own key
    import hashlib
    import hmac

    forged, prev = [], GENESIS
    for line in lines:
        rec = json.loads(line)
        rec["user"] = "mallory" if rec["user"] == "u1" else rec["user"]
        rec["prev"] = prev
        body = {k: v for k, v in rec.items() if k != "hash"}
        rec["hash"] = hmac.new(b"guessed-key", (prev + _canonical(body)).encode(), hashlib.sha256).hexdigest()
        prev = rec["hash"]
        forged.append(_canonical(rec))
    check(forged, "audit.jsonl:1: record MAC mismatch")
    assert verify_audit_log(log, None) == []   # linkage alone cannot tell: why the key matters

    log.write_text("\n".join(lines) + "\n")
    assert verify_audit_log(log, key) == []
    with pytest.raises(ValueError, match="fails verification"):
        (tmp_path / "audit.jsonl.head").write_text('{"count": 9, "last": "x", "mac": "y"}')
        AuditLog(log)


def test_rotated_log_keeps_one_chain(tmp_path):
    log = tmp_path / "audit.jsonl"
    audit, key = _fill(log, 12, max_bytes=1200)
    files = log_files(log)
    assert len(files) >= 3 and files[-1] == log
    assert verify_audit_log(log, key) == []
    assert sum(len(f.read_text().splitlines()) for f in files) == 12
    # a server restarted on a rotated log continues the chain
    AuditLog(log, max_bytes=1200).append(user="x", endpoint="e", model="m", status=200)
    assert verify_audit_log(log, key) == []
    # losing a rotated middle file is detected
    files[1].unlink()
    assert verify_audit_log(log, key)


def test_audit_verify_cli_with_key(tmp_path):
    from typer.testing import CliRunner

    from medllm.cli.main import app

    log, keyf = tmp_path / "a.jsonl", tmp_path / "secret" / "audit.key"
    audit = AuditLog(log, key_file=keyf)
    for i in range(3):
        audit.append(user=f"u{i}", endpoint="e", model="m", status=200)
    runner = CliRunner()
    r = runner.invoke(app, ["audit-verify", str(log), "--key", str(keyf)])
    assert r.exit_code == 0 and "3" in r.output and "intact" in r.output
    log.write_text("\n".join(log.read_text().splitlines()[:2]) + "\n")
    r = runner.invoke(app, ["audit-verify", str(log), "--key", str(keyf)])
    assert r.exit_code == 1 and "cut off" in r.output
