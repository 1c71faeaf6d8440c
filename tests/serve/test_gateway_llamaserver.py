"""The gateway in front of llama.cpp's own OpenAI-compatible server (``python -m
llama_cpp.server``), the usual CPU engine outside medllm. Skipped unless the optional
llama.cpp extra is installed with its server dependencies (``llama-cpp-python[server]``).
The upstream serves the embedded SmolLM2-135M-Instruct GGUF as it ships."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] extras not installed")

from medllm.config.serve import ServeConfig  # noqa: E402
from medllm.serve.audit import verify_audit_log  # noqa: E402
from medllm.serve.security import add_key  # noqa: E402
from medllm.serve.upstream import Upstream, upstream_pool  # noqa: E402
from serve_helpers import LoopbackServer, free_port  # noqa: E402

CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    from medllm.models.convert import locate_embedded_gguf
    from medllm.serve.vllm import EngineProcess

    port = free_port()
    child = EngineProcess([sys.executable, "-m", "llama_cpp.server", "--model", str(locate_embedded_gguf()),
                           "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
                           "--n_threads", "2", "--verbose", "false"],
                          log_path=tmp_path_factory.mktemp("llama_server") / "server.log", name="llama_cpp.server")
    url = f"http://127.0.0.1:{port}"
    try:
        child.start().wait_ready(url, None, timeout=120)
        yield url
    finally:
        child.stop()


@pytest.fixture()
def gw(llama_server, tmp_path):
    from medllm.serve import create_app

    key = add_key(tmp_path / "keys.txt", "dr_house")
    cfg = ServeConfig(api_keys_file=str(tmp_path / "keys.txt"), audit_log=str(tmp_path / "audit.jsonl"),
                      rate_limit_per_minute=1000)
    with LoopbackServer(create_app(cfg, upstream_pool(Upstream(llama_server)))) as srv:
        srv.key, srv.audit = key, tmp_path / "audit.jsonl"
        yield srv


def _records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def test_openai_client_streams_through_the_gateway_as_llama_server_answers(gw, llama_server):
    from openai import OpenAI

    via = OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=120)
    direct = OpenAI(base_url=llama_server + "/v1", api_key="none", max_retries=0, timeout=120)
    assert "smollm2" in [m.id for m in via.models.list()]
    ask = dict(model="smollm2", messages=[{"role": "user", "content": "Name one symptom of anemia."}],
               max_tokens=16, temperature=0, seed=1)
    streamed = [c.choices[0].delta.content for c in via.chat.completions.create(stream=True, **ask)
                if c.choices and c.choices[0].delta.content]
    plain = direct.chat.completions.create(**ask)
    answer = plain.choices[0].message.content
    assert len(streamed) >= 3                              # relayed chunk by chunk, not as one block
    assert "".join(streamed).startswith(answer.strip()[:20])   # greedy: the same words (+ the disclaimer)
    assert "not a diagnosis" in "".join(streamed) and "not a diagnosis" not in answer

    via_plain = via.chat.completions.create(**ask)
    rec = _records(gw.audit)
    assert [r["status"] for r in rec] == [200, 200] and verify_audit_log(gw.audit) == []
    # llama-server streams one token per chunk and sends no usage block when streaming: the
    # gateway counts the relayed chunks, which equals llama-server's own non-streamed count
    assert rec[-1]["completion_tokens"] == plain.usage.completion_tokens == via_plain.usage.completion_tokens


@pytest.mark.xfail(strict=True, reason="open (issue 11): llama-cpp-python's server ignores stream_options.include_usage, "
                                       "and the gateway always streams upstream, so the prompt token count is unknown "
                                       "and recorded as 0; needs a non-streamed upstream call or the upstream's tokenizer")
def test_prompt_tokens_are_known_for_an_upstream_that_reports_no_streamed_usage(gw, llama_server):
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Name one symptom of anemia."}],
            "max_tokens": 4, "temperature": 0}
    direct = httpx.post(llama_server + CHAT, json=body, timeout=120).json()["usage"]
    httpx.post(gw.url + CHAT, json=body, headers={"Authorization": f"Bearer {gw.key}"}, timeout=120)
    assert _records(gw.audit)[-1]["prompt_tokens"] == direct["prompt_tokens"]


def test_the_gateway_rejects_a_missing_key_before_llama_server(gw):
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    for headers in ({}, {"Authorization": "Bearer mk-wrong"}):
        r = httpx.post(gw.url + CHAT, json=body, headers=headers, timeout=30)
        assert r.status_code == 401
    rec = _records(gw.audit)
    assert [r["status"] for r in rec] == [401, 401] and verify_audit_log(gw.audit) == []
