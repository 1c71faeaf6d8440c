"""Optional llama.cpp backend (skipped where llama-cpp-python is not installed):
a GGUF of the tiny model served through the same app; the hybrid engine sends a
lone stream to llama.cpp and concurrent ones to the batching engine."""
from __future__ import annotations

import threading

import pytest

from medllm.config.serve import SamplingDefaults, ServeConfig

pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir, tmp_path_factory):
    from medllm.export import gguf_vocab
    from medllm.export.gguf_llama import export_gguf

    # llama.cpp 0.3.36 names the GPT-2 pre-tokenizer "gpt-2"; the exporter (another
    # area) writes "gpt2" for byte-level tokenizers at the time of writing.
    original = gguf_vocab._pre_tokenizer_name
    mp = pytest.MonkeyPatch()
    mp.setattr(gguf_vocab, "_pre_tokenizer_name",
               lambda tj, src: {"gpt2": "gpt-2"}.get(original(tj, src), original(tj, src)))
    try:
        return export_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf", gguf_type="f16")
    finally:
        mp.undo()


def test_llamacpp_backend_serves_chat_and_completions(tiny_gguf):
    from fastapi.testclient import TestClient

    from medllm.serve import create_app, load_served

    sm = load_served(tiny_gguf, backend="llama.cpp", sampling=SamplingDefaults(max_tokens=6))
    try:
        c = TestClient(create_app(ServeConfig(safety_layer=False), sm))
        assert c.get("/v1/models").json()["data"][0]["backend"] == "llama.cpp"
        r = c.post("/v1/completions", json={"prompt": "Fever is", "max_tokens": 6, "temperature": 0,
                                            "repetition_penalty": 1.0})
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] >= 1
        greedy = r.json()["choices"][0]["text"]
        again = c.post("/v1/completions", json={"prompt": "Fever is", "max_tokens": 6, "temperature": 0,
                                                "repetition_penalty": 1.0}).json()["choices"][0]["text"]
        assert again == greedy
        r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "stream": True})
        assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")
        assert c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}],
                                                    "model": "x/adapter"}).status_code == 404
    finally:
        sm.engine.stop()


def test_hybrid_routes_lone_stream_to_llamacpp_and_concurrency_to_batch(tiny_gguf):
    from medllm.serve import load_served
    from medllm.serve.engine import GenRequest
    from medllm.serve.sampling import SamplingParams

    sm = load_served(tiny_gguf, backend="hybrid", max_batch=4)
    eng = sm.engine
    ids = sm.tokenizer("Hello").input_ids
    try:
        done = threading.Event()
        eng.submit(GenRequest(ids, SamplingParams(max_tokens=3), lambda e: e.kind != "delta" and done.set()))
        assert done.wait(60)
        assert eng.single.stats["requests_total"] == 1 and eng.batch.stats["requests_total"] == 0
        events = [threading.Event() for _ in range(4)]
        for ev in events:
            eng.submit(GenRequest(ids, SamplingParams(max_tokens=20, ignore_eos=True),
                                  lambda e, ev=ev: e.kind != "delta" and ev.set()))
        assert all(ev.wait(120) for ev in events)
        assert eng.batch.stats["requests_total"] >= 3      # at most one went to llama.cpp
    finally:
        eng.stop()
