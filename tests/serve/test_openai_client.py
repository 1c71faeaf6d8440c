"""The official openai client, unchanged, against `medllm serve` of a run on loopback."""
from __future__ import annotations

from medllm.config.serve import ServeConfig
from medllm.serve.security import add_key


def test_openai_client_streams_chat_with_adapter_by_name(loopback, tmp_path):
    from openai import AuthenticationError, OpenAI

    key = add_key(tmp_path / "keys.txt", "dr_house")
    srv = loopback(ServeConfig(api_keys_file=str(tmp_path / "keys.txt"), audit_log=str(tmp_path / "audit.jsonl")))
    client = OpenAI(base_url=srv.url + "/v1", api_key=key, max_retries=0, timeout=60)
    assert [m.id for m in client.models.list()] == ["demo", "demo/sft"]

    stream = client.chat.completions.create(
        model="demo/sft", messages=[{"role": "user", "content": "What are the symptoms of anemia?"}],
        stream=True, max_tokens=12, temperature=0.6, top_p=0.9, seed=5,
        extra_body={"top_k": 50, "repetition_penalty": 1.2})
    deltas = [ch.choices[0].delta.content or "" for ch in stream if ch.choices]
    assert len([d for d in deltas if d]) >= 3          # arrived in pieces
    assert "not a diagnosis" in "".join(deltas)         # disclaimer from the safety layer

    done = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Hi"}],
                                          max_tokens=4, n=2, seed=1)
    assert len(done.choices) == 2 and done.usage.completion_tokens >= 2
    comp = client.completions.create(model="demo/sft", prompt="Anemia is", max_tokens=4, temperature=0)
    assert comp.choices[0].finish_reason in ("stop", "length")

    bad = OpenAI(base_url=srv.url + "/v1", api_key="mk-wrong", max_retries=0)
    try:
        bad.models.list()
        raise AssertionError("bad key accepted")
    except AuthenticationError:
        pass
    audit = (tmp_path / "audit.jsonl").read_text().splitlines()
    # 3 answered requests + the refused bad-key attempt (every attempt is audited, without its body)
    assert len(audit) == 4 and '"user":"dr_house"' in audit[0] and '"adapter":"demo/sft"' in audit[0]
    assert '"status":401' in audit[3] and '"user":"unauthenticated"' in audit[3]


def test_medllm_serve_cli_of_a_run_streams_to_openai_client(tiny_run_dir, tmp_path):
    """The real command: `medllm serve runs/demo --check --api-keys ... --audit-log ...` on loopback."""
    import os
    import subprocess
    import sys
    import time

    import httpx
    from openai import OpenAI

    from serve_helpers import free_port

    key = add_key(tmp_path / "keys.txt", "nurse_joy")
    port = free_port()
    cmd = [sys.executable, "-m", "medllm.cli.main", "serve", str(tiny_run_dir), "--port", str(port), "--check",
           "--api-keys", str(tmp_path / "keys.txt"), "--audit-log", str(tmp_path / "audit.jsonl"),
           "--dtype", "float32"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "MEDLLM_QUIET": "1"})
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, "server did not come up"
            time.sleep(0.5)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=60)
        chunks = list(client.chat.completions.create(
            model="demo/sft", messages=[{"role": "user", "content": "How is asthma treated?"}],
            stream=True, max_tokens=8))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text and chunks[-1].choices[0].finish_reason in ("stop", "length")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "model files verified" in out
    assert '"user":"nurse_joy"' in (tmp_path / "audit.jsonl").read_text()
