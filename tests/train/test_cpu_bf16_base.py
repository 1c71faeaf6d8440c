"""LoRA on a bf16-capable CPU trains on a bf16 frozen base with fp32 adapters, and the stage's
weights are still the fp32 base plus the fp32 adapter (the merge never sees the bf16 copy)."""
from __future__ import annotations

import json

import pytest
import torch

from medllm.models import cpu_supports_bf16

pytestmark = pytest.mark.skipif(not cpu_supports_bf16(), reason="needs a CPU with native bf16 (autocast)")


def test_lora_trains_on_a_bf16_base_and_merges_into_the_fp32_weights(tmp_path, sft_ds, monkeypatch):
    from safetensors.torch import load_file

    import medllm.train.base as base

    monkeypatch.setattr(base, "CPU_BF16_FROZEN_BASE", True)   # the switch under test (on by default)

    from medllm.config.train import SFTStage
    from medllm.models import load_causal_lm
    from medllm.models.registry import ensure_local
    from medllm.train import run_stage

    stage = SFTStage(data=["t"], adapter={"method": "lora", "r": 4, "alpha": 8, "dropout": 0.0}, batch_size=4,
                     max_steps=3, max_seq_len=64, lr=5e-3, log_every=1)
    res = run_stage("sft", stage, base_model="tiny-llama", datasets={"t": sft_ds}, out_dir=tmp_path, seed=3)
    assert res.metrics["weights_dtype"] == "bfloat16" and res.metrics["params_changed"]
    lineage = json.loads((tmp_path / "model.json").read_text())
    assert lineage["dtype"] == "float32"
    adapter = load_file(str(res.adapter_dir / "adapter_model.safetensors"))
    assert adapter and all(t.dtype == torch.float32 for t in adapter.values())

    base, _ = load_causal_lm(ensure_local("tiny-llama"), dtype="float32")
    merged, _ = load_causal_lm(res.model_dir, dtype="float32")
    assert all(p.dtype == torch.float32 for p in merged.parameters())
    name = next(k for k in adapter if "q_proj.lora_A" in k)
    a, b = adapter[name], adapter[name.replace("lora_A", "lora_B")]
    module = name.split("base_model.model.", 1)[1].rsplit(".lora_A", 1)[0]
    want = base.get_submodule(module).weight + (8 / 4) * b @ a
    got = merged.get_submodule(module).weight
    assert not torch.equal(got, base.get_submodule(module).weight)             # the adapter was folded in
    assert torch.allclose(got, want, atol=1e-6)                                # into the fp32 weights, unrounded
    assert (got - want).abs().max() < (got.to(torch.bfloat16).float() - got).abs().max()
