"""Export of a stage folder with a model.json lineage keeps the base dtype (bf16, not fp32),
and the GGUF of it matches the merged weights."""
from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def bf16_stage(tiny_model_dir, lora_adapter, tmp_path_factory):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("lineage")
    base = root / "base-bf16"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).save_pretrained(base)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(base)
    stage = root / "stage"
    stage.mkdir()
    import shutil

    shutil.copytree(lora_adapter, stage / "adapter")
    (stage / "model.json").write_text(json.dumps({"base": str(base), "adapters": ["adapter"], "dtype": "bfloat16"}))
    return stage, base


def test_stage_folder_exports_merged_in_base_dtype(bf16_stage, tmp_path):
    import torch
    from safetensors.torch import load_file

    from medllm.export import export_model
    from medllm.export.hf import load_merged

    stage, base = bf16_stage
    record = export_model(stage, tmp_path / "out", formats="hf,gguf", gguf_type="f16")
    assert record["source"]["adapter"].endswith("adapter")
    cfg = json.loads((tmp_path / "out" / "hf" / "config.json").read_text())
    assert cfg["dtype"] == "bfloat16"
    state = load_file(tmp_path / "out" / "hf" / "model.safetensors")
    assert {t.dtype for t in state.values()} == {torch.bfloat16}
    plain = load_file(base / "model.safetensors")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(state[key], plain[key])           # the adapter was merged
    expected = load_merged(base, [stage / "adapter"]).state_dict()[key]
    assert torch.equal(state[key], expected)
