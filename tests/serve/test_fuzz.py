"""Property/fuzz test of the API schema: no malformed input ever yields a 5xx."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medllm.config.serve import ServeConfig

json_scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=30)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
roles = st.sampled_from(["user", "assistant", "system", "developer", "tool", "", 3, None])
messages = st.lists(st.fixed_dictionaries({"role": roles, "content": json_scalars | st.lists(json_values, max_size=2)}),
                    max_size=3)
FIELDS = {
    "model": st.sampled_from(["demo", "demo/sft", "nope", "", None, 7]),
    "temperature": json_scalars, "top_p": json_scalars, "top_k": json_scalars, "repetition_penalty": json_scalars,
    "max_tokens": st.integers(-3, 3) | json_scalars, "stop": json_values, "seed": json_scalars,
    "n": st.integers(-1, 3) | json_scalars, "stream": json_scalars, "stream_options": json_values,
}
chat_bodies = st.fixed_dictionaries({"messages": messages | json_values},
                                    optional={k: v for k, v in FIELDS.items()})
completion_bodies = st.fixed_dictionaries({"prompt": json_values | st.text(max_size=40)},
                                          optional={k: v for k, v in FIELDS.items()})
raw_bodies = st.binary(max_size=200) | st.text(max_size=200).map(str.encode)


def _check(r):
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert "error" in r.json()


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def test_fuzz_chat_and_completions(make_client):
    c = make_client(ServeConfig(max_completion_tokens=3, max_n=2))

    @FUZZ
    @given(body=chat_bodies | completion_bodies, path=st.sampled_from(["/v1/chat/completions", "/v1/completions"]))
    def run(body, path):
        _check(c.post(path, content=json.dumps(body, allow_nan=True).encode()))

    run()


def test_fuzz_raw_bytes_and_methods(make_client):
    c = make_client()

    @FUZZ
    @given(body=raw_bodies, path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/models",
                                                  "/", "/health", "/metrics", "/v1/x"]),
           method=st.sampled_from(["POST", "GET", "PUT", "DELETE"]),
           ctype=st.sampled_from(["application/json", "text/plain", "", "multipart/form-data"]))
    def run(body, path, method, ctype):
        r = c.request(method, path, content=body, headers={"content-type": ctype} if ctype else {})
        assert r.status_code < 500, (r.status_code, r.text[:300])

    run()
