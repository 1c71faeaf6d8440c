"""Serving a run folder: each stage adapter runs on the model it was trained on,
reward models are skipped, and `<run>/<stage>` (base + adapter) gives the same
tokens as the stage's merged model."""
from __future__ import annotations

import json

import pytest

from medllm.config.serve import SamplingDefaults, ServeConfig
from medllm.serve.models import ServeModelError, read_run


@pytest.fixture(scope="module")
def merged_run(tiny_model_dir, tiny_adapter_dir, tmp_path_factory):
    """base -> sft (adapter, merged) -> reward (a classifier): as the pipeline records it."""
    import shutil

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("mruns")
    merged = root / "sft_merged"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    PeftModel.from_pretrained(base, str(tiny_adapter_dir)).merge_and_unload().save_pretrained(merged)
    for f in tiny_model_dir.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(f, merged / f.name)
    reward = root / "reward"
    reward.mkdir()
    (reward / "config.json").write_text(json.dumps({"architectures": ["LlamaForSequenceClassification"]}))
    run = root / "trial"
    run.mkdir()
    (run / "state.json").write_text(json.dumps({"stages": {
        "sft": {"status": "done", "base_model": str(tiny_model_dir), "model_dir": str(merged),
                "adapter_dir": str(tiny_adapter_dir)},
        "reward": {"status": "done", "base_model": str(merged), "model_dir": str(reward)},
        "dpo": {"status": "failed"}}}))
    return run


def test_read_run_picks_final_causal_lm_and_adapter_bases(merged_run, tiny_model_dir):
    run = read_run(merged_run)
    assert run.model_dir.name == "sft_merged"                  # the classifier is not "final"
    assert run.adapter_bases["trial/sft"] == tiny_model_dir.resolve()
    broken = merged_run.parent / "broken"
    broken.mkdir()
    (broken / "state.json").write_text("{not json")
    with pytest.raises(ServeModelError, match="state.json"):
        read_run(broken)


def test_adapter_on_its_base_equals_merged_model(merged_run):
    from fastapi.testclient import TestClient

    from medllm.serve import create_app, load_pool

    pool = load_pool(merged_run, dtype="float32", sampling=SamplingDefaults(max_tokens=12))
    try:
        assert pool.ids() == ["trial", "trial/base", "trial/sft"]
        c = TestClient(create_app(ServeConfig(safety_layer=False), pool))
        req = {"prompt": "The kidney filters", "max_tokens": 12, "temperature": 0, "repetition_penalty": 1.0}
        texts = {m: c.post("/v1/completions", json={**req, "model": m}).json()["choices"][0]["text"]
                 for m in pool.ids()}
        assert texts["trial/sft"] == texts["trial"]       # base + adapter == merged stage model
        assert texts["trial/base"] != texts["trial"]
    finally:
        pool.stop()
