"""OpenAI-compatible routes in-process: shapes, streaming, sampling knobs,
adapters by name, safety layer, limits and metrics."""
from __future__ import annotations

from medllm.config.serve import ServeConfig

from serve_helpers import sse_events

CHAT = {"messages": [{"role": "user", "content": "What is hypertension?"}], "max_tokens": 8}


def test_models_lists_base_and_run_adapter(make_client):
    c = make_client()
    data = c.get("/v1/models").json()["data"]
    ids = [m["id"] for m in data]
    assert ids == ["demo", "demo/sft"]
    assert data[1]["adapter"] == "demo/sft" and len(data[1]["sha256"]) == 64
    assert data[0]["sampling"]["temperature"] == 0.6 and data[0]["sampling"]["repetition_penalty"] == 1.2
    assert c.get("/health").json()["status"] == "ok"


def test_chat_non_stream_shape_and_usage(make_client):
    c = make_client(ServeConfig(safety_layer=False))
    r = c.post("/v1/chat/completions", json={**CHAT, "seed": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "demo"
    msg = body["choices"][0]["message"]
    assert msg["role"] == "assistant" and msg["content"]
    assert body["usage"]["completion_tokens"] <= 8
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


def test_chat_stream_concatenates_to_non_stream_greedy(make_client):
    c = make_client(ServeConfig(safety_layer=False))
    req = {**CHAT, "temperature": 0, "max_tokens": 10}
    full = c.post("/v1/chat/completions", json=req).json()["choices"][0]["message"]["content"]
    r = c.post("/v1/chat/completions", json={**req, "stream": True, "stream_options": {"include_usage": True}})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events[:-1] if e["choices"]]
    streamed = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks)
    assert streamed == full
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert events[-2]["usage"]["completion_tokens"] >= 1


def test_adapter_selected_by_model_name_changes_output(make_client):
    c = make_client(ServeConfig(safety_layer=False))
    req = {**CHAT, "temperature": 0, "max_tokens": 12, "repetition_penalty": 1.0}
    base = c.post("/v1/chat/completions", json={**req, "model": "demo"}).json()
    tuned = c.post("/v1/chat/completions", json={**req, "model": "demo/sft"}).json()
    assert tuned["model"] == "demo/sft"
    assert base["choices"][0]["message"]["content"] != tuned["choices"][0]["message"]["content"]
    again = c.post("/v1/chat/completions", json={**req, "model": "demo"}).json()
    assert again["choices"][0]["message"]["content"] == base["choices"][0]["message"]["content"]


def test_completions_n_seed_and_stop(make_client):
    c = make_client()
    r = c.post("/v1/completions", json={"prompt": "Diabetes is", "max_tokens": 8, "n": 3, "seed": 11,
                                        "temperature": 1.0})
    body = r.json()
    assert [ch["index"] for ch in body["choices"]] == [0, 1, 2]
    again = c.post("/v1/completions", json={"prompt": "Diabetes is", "max_tokens": 8, "n": 3, "seed": 11,
                                            "temperature": 1.0}).json()
    assert [ch["text"] for ch in again["choices"]] == [ch["text"] for ch in body["choices"]]
    assert "URGENT" not in body["choices"][0]["text"]   # raw completions carry no safety text
    greedy = {"prompt": "Diabetes is", "max_tokens": 10, "temperature": 0}
    text = c.post("/v1/completions", json=greedy).json()["choices"][0]["text"]
    stop = text[2:5]
    cut = c.post("/v1/completions", json={**greedy, "stop": stop}).json()["choices"][0]
    assert cut["text"] == text[:text.find(stop)] and cut["finish_reason"] == "stop"


def test_completions_stream(make_client):
    c = make_client()
    r = c.post("/v1/completions", json={"prompt": "Asthma", "max_tokens": 5, "stream": True})
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    assert all(e["object"] == "text_completion" for e in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] in ("stop", "length")


def test_safety_layer_disclaimer_and_red_flags(make_client):
    c = make_client(ServeConfig(safety_layer=True))
    urgent = {"messages": [{"role": "user", "content": "My father has crushing chest pain and is sweating a lot"}],
              "max_tokens": 4}
    body = c.post("/v1/chat/completions", json=urgent).json()
    text = body["choices"][0]["message"]["content"]
    assert text.startswith("URGENT") and "emergency" in text
    assert "not a diagnosis" in text
    assert body["medllm"]["red_flags"] == ["chest pain with sweating or breathlessness"]
    calm = c.post("/v1/chat/completions", json=CHAT).json()
    assert not calm["choices"][0]["message"]["content"].startswith("URGENT")
    assert "not a diagnosis" in calm["choices"][0]["message"]["content"]
    events = sse_events(c.post("/v1/chat/completions", json={**urgent, "stream": True}).text)
    streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert streamed.startswith("URGENT") and streamed.rstrip().endswith("clinical decision.")


def test_red_flag_patterns():
    from medllm.serve.safety import SafetyLayer

    s = SafetyLayer()
    assert "stroke signs" in s.check("her face is drooping and she has slurred speech")
    assert "suicidal intent" in s.check("I want to end my life")
    assert s.check("I have a mild headache after coffee") == []
    assert SafetyLayer(enabled=False).check("I want to end my life") == []


def test_limits_and_errors_are_4xx(make_client):
    c = make_client(ServeConfig(max_body_bytes=2000, max_prompt_tokens=50, max_completion_tokens=64, max_n=2))
    assert c.post("/v1/chat/completions", json={**CHAT, "model": "nope"}).status_code == 404
    assert c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 65}).status_code == 400
    assert c.post("/v1/chat/completions", json={**CHAT, "n": 3}).status_code == 400
    long = {"messages": [{"role": "user", "content": "pain " * 100}]}
    r = c.post("/v1/chat/completions", json=long)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    assert c.post("/v1/chat/completions", content=b"x" * 3000).status_code == 413
    assert c.post("/v1/chat/completions", content=b"{not json").status_code == 400
    assert c.post("/v1/chat/completions", json={"messages": []}).status_code == 400
    assert c.post("/v1/chat/completions", json={**CHAT, "temperature": -1}).status_code == 400
    assert c.get("/v1/nothing").status_code == 404
    r = c.post("/v1/completions", json={"prompt": ["a", "b"]})
    assert r.status_code == 400 and "error" in r.json()


def test_metrics_prometheus_text(make_client):
    c = make_client()
    c.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2})
    c.post("/v1/completions", json={"prompt": 5})
    text = c.get("/metrics").text
    assert 'medllm_requests_total{endpoint="/v1/completions",status="200"} 1' in text
    assert 'medllm_requests_total{endpoint="/v1/completions",status="400"} 1' in text
    assert 'medllm_queue_waiting{model="demo"}' in text
    assert "medllm_completion_tokens_total" in text


def test_web_chat_page_is_self_contained(make_client):
    c = make_client()
    html = c.get("/").text
    assert "Medical disclaimer" in html and "/static/chat.js" in html
    assert "http://" not in html and "https://" not in html    # no CDN
    js = c.get("/static/chat.js").text
    assert "/v1/chat/completions" in js and "http" not in js.replace("/v1", "")
