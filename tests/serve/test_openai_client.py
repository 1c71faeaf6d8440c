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
    assert len(audit) == 3 and '"user":"dr_house"' in audit[0] and '"adapter":"demo/sft"' in audit[0]
