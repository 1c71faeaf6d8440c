"""Gateway mode (`medllm serve --upstream URL`): medllm's front (auth, limits, audit,
safety, metrics) in front of another OpenAI-compatible server, here medllm's own
engine server on tiny-llama on loopback."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from medllm.config.serve import ServeConfig
from medllm.serve.audit import verify_audit_log
from medllm.serve.security import add_key
from medllm.serve.upstream import Upstream, upstream_pool
from serve_helpers import LoopbackServer, free_port, sse_events

CHAT = "/v1/chat/completions"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


@pytest.fixture(scope="module")
def upstream(served_run, tmp_path_factory):
    """medllm's engine server as the upstream: its own key (the gateway's), its own
    audit log (to see what reached it), no safety text (the gateway adds it)."""
    from medllm.serve import create_app

    d = tmp_path_factory.mktemp("upstream")
    key = add_key(d / "keys.txt", "gateway")
    cfg = ServeConfig(api_keys_file=str(d / "keys.txt"), audit_log=str(d / "audit.jsonl"), safety_layer=False,
                      rate_limit_per_minute=100_000, max_queue=256)
    with LoopbackServer(create_app(cfg, served_run)) as srv:
        yield SimpleNamespace(url=srv.url, key=key, audit=d / "audit.jsonl")


@pytest.fixture()
def gateway(upstream, tmp_path):
    """Start a gateway in front of ``upstream`` (or another URL); yields a starter."""
    from medllm.serve import create_app

    servers = []

    def start(url=None, key="same", models=None, connect_timeout=3.0, read_timeout=30.0, **cfg):
        up = Upstream(url or upstream.url, api_key=upstream.key if key == "same" else key,
                      connect_timeout=connect_timeout, read_timeout=read_timeout)
        client_key = add_key(tmp_path / "gw_keys.txt", "dr_house")
        config = ServeConfig(api_keys_file=str(tmp_path / "gw_keys.txt"), audit_log=str(tmp_path / "gw_audit.jsonl"),
                             rate_limit_per_minute=1000, **cfg)
        srv = LoopbackServer(create_app(config, upstream_pool(up, models=models))).__enter__()
        servers.append(srv)
        return SimpleNamespace(url=srv.url, key=client_key, audit=tmp_path / "gw_audit.jsonl",
                               headers={"Authorization": f"Bearer {client_key}"})

    yield start
    for s in servers:
        s.__exit__(None, None, None)


def test_openai_client_through_gateway_matches_the_upstream_chunk_for_chunk(gateway, upstream):
    from openai import OpenAI

    gw = gateway()
    via = OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=60)
    direct = OpenAI(base_url=upstream.url + "/v1", api_key=upstream.key, max_retries=0, timeout=60)
    assert [m.id for m in via.models.list()] == ["demo", "demo/sft"]   # the upstream's list

    ask = dict(model="demo/sft", messages=[{"role": "user", "content": "What are the symptoms of anemia?"}],
               stream=True, max_tokens=12, temperature=0.6, top_p=0.9, seed=5,
               stream_options={"include_usage": True}, extra_body={"top_k": 50, "repetition_penalty": 1.2})
    gw_chunks = list(via.chat.completions.create(**ask))
    up_chunks = list(direct.chat.completions.create(**ask))
    gw_deltas = [c.choices[0].delta.content for c in gw_chunks if c.choices and c.choices[0].delta.content]
    up_deltas = [c.choices[0].delta.content for c in up_chunks if c.choices and c.choices[0].delta.content]
    # relayed one chunk per upstream chunk (not buffered into one), plus the disclaimer chunk
    assert len(up_deltas) >= 3 and gw_deltas[:-1] == up_deltas
    assert "not a diagnosis" in gw_deltas[-1] and "not a diagnosis" not in "".join(up_deltas)
    gw_usage, up_usage = gw_chunks[-1].usage, up_chunks[-1].usage
    assert gw_usage.completion_tokens == up_usage.completion_tokens and gw_usage.prompt_tokens == up_usage.prompt_tokens

    comp = dict(model="demo", prompt="Anemia is", max_tokens=6, temperature=0)
    assert via.completions.create(**comp).choices[0].text == direct.completions.create(**comp).choices[0].text

    rec = _records(gw.audit)
    assert [r["endpoint"] for r in rec] == [CHAT, "/v1/completions"] and verify_audit_log(gw.audit) == []
    assert rec[0]["user"] == "dr_house" and rec[0]["model"] == "demo/sft" and rec[0]["status"] == 200
    assert (rec[0]["prompt_tokens"], rec[0]["completion_tokens"]) == (up_usage.prompt_tokens, up_usage.completion_tokens)
    metrics = httpx.get(gw.url + "/metrics").text
    assert f'medllm_requests_total{{endpoint="{CHAT}",status="200"}} 1' in metrics
    assert httpx.get(gw.url + "/").status_code == 200    # the web chat is served by the gateway too


def test_gateway_auth_rejects_before_the_upstream_sees_anything(gateway, upstream):
    gw = gateway()
    before = len(_records(upstream.audit))
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    for headers in ({}, {"Authorization": "Bearer mk-wrong"}):
        r = httpx.post(gw.url + CHAT, json=body, headers=headers, timeout=30)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert len(_records(upstream.audit)) == before

    # the gateway holding a wrong upstream key: the client is told it is the server's fault
    bad = gateway(key="mk-not-the-upstreams", models={"demo": "demo"})
    r = httpx.post(bad.url + CHAT, json=body, headers=bad.headers, timeout=30)
    assert r.status_code == 502 and "rejected the gateway's key" in r.json()["error"]["message"]


def test_upstream_down_is_a_503_within_seconds_and_audited(gateway):
    port = free_port()    # nothing listens there
    gw = gateway(url=f"http://127.0.0.1:{port}", models={"demo": "demo"})
    for stream in (True, False):
        t0 = time.monotonic()
        r = httpx.post(gw.url + CHAT, headers=gw.headers, timeout=30,
                       json={"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
        assert time.monotonic() - t0 < 5
        assert r.status_code == 503, r.text
        assert f"127.0.0.1:{port} is not reachable" in r.json()["error"]["message"]
    rec = _records(gw.audit)
    assert [r["status"] for r in rec] == [503, 503] and verify_audit_log(gw.audit) == []


def test_silent_upstream_hits_the_read_timeout(gateway):
    with socket.socket() as sink:      # accepts connections (kernel backlog), never answers
        sink.bind(("127.0.0.1", 0))
        sink.listen(8)
        gw = gateway(url=f"http://127.0.0.1:{sink.getsockname()[1]}", models={"demo": "demo"}, read_timeout=1.0)
        t0 = time.monotonic()
        r = httpx.post(gw.url + CHAT, headers=gw.headers, timeout=30,
                       json={"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": True})
        assert r.status_code == 504 and "within 1 s" in r.json()["error"]["message"]
        assert time.monotonic() - t0 < 6


def test_client_disconnect_cancels_the_upstream_request(gateway, upstream):
    gw = gateway()
    before = len(_records(upstream.audit))
    body = {"model": "demo", "messages": [{"role": "user", "content": "Tell me everything about asthma."}],
            "stream": True, "max_tokens": 1500, "seed": 1}
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", gw.url + CHAT, json=body, headers=gw.headers) as resp:
            assert resp.status_code == 200
            lines = resp.iter_lines()
            got = [next(lines) for _ in range(6)]
            assert any('"content"' in g for g in got)
        # leaving the block closes the connection mid-answer
    deadline = time.monotonic() + 20
    while len(_records(upstream.audit)) == before:
        assert time.monotonic() < deadline, "the upstream never finished the request"
        time.sleep(0.1)
    up = _records(upstream.audit)[-1]
    assert up["status"] == 499 and up["completion_tokens"] < 1500   # it stopped, not ran to max_tokens
    deadline = time.monotonic() + 10
    while not _records(gw.audit):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert _records(gw.audit)[-1]["status"] == 499


def test_32_concurrent_streams_all_complete_and_are_counted(gateway, upstream):
    gw = gateway()
    before = len(_records(upstream.audit))

    async def one(client, i):
        body = {"model": "demo" if i % 2 else "demo/sft", "stream": True, "max_tokens": 8, "seed": i,
                "messages": [{"role": "user", "content": f"Question {i}: what is hypertension?"}],
                "stream_options": {"include_usage": True}}
        async with client.stream("POST", gw.url + CHAT, json=body, headers=gw.headers) as resp:
            assert resp.status_code == 200
            text = (await resp.aread()).decode()
        ev = sse_events(text)
        assert ev[-1] == "[DONE]" and not any("error" in e for e in ev[:-1])
        assert any(e["choices"] and e["choices"][0]["finish_reason"] in ("stop", "length") for e in ev[:-2])
        return ev[-2]["usage"]["completion_tokens"]

    async def main():
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.wait_for(asyncio.gather(*(one(client, i) for i in range(32))), 120)

    counts = asyncio.run(main())
    rec = _records(gw.audit)
    assert len(rec) == 32 and all(r["status"] == 200 for r in rec) and verify_audit_log(gw.audit) == []
    assert sorted(r["completion_tokens"] for r in rec) == sorted(counts)
    reached = _records(upstream.audit)[before:]
    assert len(reached) == 32 and sum(r["completion_tokens"] for r in reached) == sum(counts)


def test_upstream_killed_mid_stream_gives_an_error_event_and_an_audit_record(gateway, tiny_model_dir):
    """A real upstream process, SIGKILLed while it streams."""
    port = free_port()
    cmd = [sys.executable, "-m", "medllm.cli.main", "serve", str(tiny_model_dir), "--port", str(port),
           "--no-safety", "--dtype", "float32"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "MEDLLM_QUIET": "1"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "upstream did not come up"
            time.sleep(0.3)
        gw = gateway(url=f"http://127.0.0.1:{port}", key=None)
        model = httpx.get(gw.url + "/v1/models", headers=gw.headers).json()["data"][0]["id"]
        body = {"model": model, "messages": [{"role": "user", "content": "Explain diabetes."}],
                "stream": True, "max_tokens": 1500, "seed": 2}
        events = []
        with httpx.stream("POST", gw.url + CHAT, json=body, headers=gw.headers, timeout=30) as resp:
            assert resp.status_code == 200
            for i, line in enumerate(resp.iter_lines()):
                if line.startswith("data:"):
                    events.append(line[5:].strip())
                if i == 8:
                    os.killpg(proc.pid, signal.SIGKILL)
                assert i < 20_000
        assert events[-1] == "[DONE]"
        errors = [json.loads(e)["error"] for e in events[:-1] if '"error"' in e]
        assert errors and "connection lost mid-stream" in errors[0]["message"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    rec = _records(gw.audit)[-1]
    assert rec["status"] == 500 and rec["finish_reason"] == "error" and rec["completion_tokens"] > 0
    assert verify_audit_log(gw.audit) == []
