"""Offline guard: env set on import, and a tiny end-to-end use opens no outside connection."""
from __future__ import annotations

import os
import socket

import pytest

import medllm  # noqa: F401
from medllm.offline import OFFLINE_ENV


def test_offline_env_is_set_on_import():
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        assert os.environ[key] == OFFLINE_ENV[key] == "1"


def test_guard_catches_outside_connections(no_network):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(AssertionError):
        s.connect(("93.184.216.34", 443))
    s.close()
    assert no_network == ["connect ('93.184.216.34', 443)"]


def test_tiny_model_run_makes_no_network_attempt(no_network, tmp_path, tiny_model_dir):
    import torch

    from medllm.config.loader import load_recipe
    from medllm.models import load_causal_lm
    from medllm.runs import RunFolder

    recipe = load_recipe(data={"name": "offline", "model": {"name": "tiny-llama"}, "output_dir": str(tmp_path)})
    run = RunFolder.create(recipe)
    model, tok = load_causal_lm(recipe.model.name)
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 4
    assert (run.path / "environment.json").is_file()
    assert no_network == []
