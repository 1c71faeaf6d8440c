"""CPU micro-batches sized from the plan's estimate (``train.memory_fit``), and a measured peak held to it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medllm.config.train import SFTStage
from medllm.plan.shapes import read_shape
from medllm.train.memory_fit import CPU_RUNTIME_GB, estimate_gb, fit_stage

HERE = Path(__file__).resolve().parent
SMOL = "smollm2-135m-instruct"   # its shape only (the registry preset / cached config), no weights loaded


def test_the_old_pubmedqa_batch_is_split_to_fit_6_gb_and_keeps_the_optimizer_batch():
    """configs/supervised-pubmedqa.yaml's former LoRA 8 x 768 (17-18 GB RSS measured)."""
    stage = SFTStage(adapter={"method": "lora", "dropout": 0.05}, batch_size=8, grad_accum=1, max_seq_len=768)
    shape = read_shape(SMOL)
    assert estimate_gb("sft", stage, shape) > 6
    new, info = fit_stage("sft", stage, SMOL, on_cuda=False)
    assert new.batch_size < 8 and 8 % new.batch_size == 0
    assert new.batch_size * new.grad_accum == 8                   # same samples per optimizer step
    assert estimate_gb("sft", new, shape) + CPU_RUNTIME_GB <= 6.0
    assert not new.gradient_checkpointing                         # splitting sufficed: no recomputation
    assert info["micro_batch"] == new.batch_size and info["batch_size_configured"] == 8


def test_checkpointing_only_when_one_sample_does_not_fit_and_nothing_changes_on_cuda_or_budget_0():
    long = SFTStage(adapter={"method": "full"}, batch_size=4, max_seq_len=8192)
    one = long.model_copy(update={"batch_size": 1})
    assert estimate_gb("sft", one, read_shape(SMOL)) + CPU_RUNTIME_GB > 6    # 1 x 8192 without recomputation: over
    new, _ = fit_stage("sft", long, SMOL, on_cuda=False)
    assert new.gradient_checkpointing and new.batch_size * new.grad_accum == 4
    assert estimate_gb("sft", new, read_shape(SMOL)) + CPU_RUNTIME_GB <= 6
    assert fit_stage("sft", long, SMOL, on_cuda=True)[0] is long
    assert fit_stage("sft", long, SMOL, on_cuda=False, budget_gb=0)[0] is long
    small = SFTStage(adapter={"method": "lora"}, batch_size=4, max_seq_len=256)
    assert fit_stage("sft", small, SMOL, on_cuda=False)[0].batch_size == 4   # fits: left alone


def test_every_shipped_135m_recipe_stage_fits_6_gb_after_fitting():
    from medllm.config.loader import load_recipe

    root = HERE.parents[1] / "configs"
    for path in sorted(root.glob("*.yaml")):
        recipe = load_recipe(path, [f"model.name={SMOL}"], check_files=False)
        for name, stage in recipe.stages.items():
            new, _ = fit_stage(name, stage, SMOL, on_cuda=False)
            gb = estimate_gb(name, new, read_shape(SMOL)) + CPU_RUNTIME_GB
            assert gb <= 6.0 or (new.batch_size == 1 and new.gradient_checkpointing), (path.name, name, gb)


@pytest.mark.xfail(reason="open (issue 10/15): inside the full suite this subprocess measured 2.19 GB (both this test and the plan one), alone or on a fresh MEDLLM_HOME 0.78-0.82 GB; the environment/cache difference is not found yet", strict=False)
def test_a_long_sequence_run_peaks_within_its_estimate():
    """tiny-llama-4layer full FT, 8 x 2048-token conversations, fp32, 1 thread, in its own process.
    8 rows at once are estimated over the budget, so the stage must run smaller forwards (the
    8-row batch split to fit, ``train.fast_lm.split_to_fit``),
    and the measured peak (minus the post-warm-up baseline) must stay under the estimate the
    micro-batch was chosen by, while being more than a third of it (the estimate is not vacuous)."""
    budget = CPU_RUNTIME_GB + 0.9
    shape = read_shape("tiny-llama-4layer")
    whole = SFTStage(adapter={"method": "full"}, batch_size=8, max_seq_len=2048)
    assert estimate_gb("sft", whole, shape) > budget - CPU_RUNTIME_GB
    env = {**os.environ, "MEDLLM_QUIET": "1"}
    out = subprocess.run([sys.executable, str(HERE / "long_seq_peak.py"), "tiny-llama-4layer", "full", "8", "2048",
                          str(budget)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["forward_rows_max"] < 8 and got["micro_batch"] * got["grad_accum"] == 8
    assert got["tokens"] >= 2 * 8 * 2000                      # the long rows really were trained
    assert got["delta_gb"] <= got["estimate_gb"], got
    assert got["delta_gb"] >= got["estimate_gb"] / 3, got


@pytest.mark.parametrize("method", ["lora"])
def test_stage_metrics_record_the_micro_batch(method, tmp_path):
    from datasets import Dataset

    from medllm.train import run_stage

    rows = [{"messages": [{"role": "user", "content": "what lowers blood pressure " * 20},
                          {"role": "assistant", "content": "ACE inhibitors"}]} for _ in range(4)]
    stage = SFTStage(data=["t"], adapter={"method": method}, batch_size=4, max_steps=1, max_seq_len=128,
                     bf16="false", cpu_memory_gb=CPU_RUNTIME_GB + 0.2)
    res = run_stage("sft", stage, base_model="tiny-llama", datasets={"t": Dataset.from_list(rows)}, out_dir=tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["batch_size_configured"] == 4 and saved["micro_batch"] * saved["grad_accum"] == 4
    assert res.metrics["micro_batch"] == saved["micro_batch"]
