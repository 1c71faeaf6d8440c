"""bf16 weights with fp32 master weights (train/master_weights.py): gradients accumulate in
fp32, the step writes rounded masters back, saved weights are the exact masters, resume is exact."""
from __future__ import annotations

import shutil

import pytest
import torch

from medllm.train.master_weights import ENV, MasterWeights


def test_gradients_accumulate_in_fp32_and_the_step_writes_masters_back():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1))
    model[1].bias.requires_grad_(False)  # a frozen weight computes in bf16, leaves as its exact fp32 self
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mw = MasterWeights(model)
    assert model[0].weight.dtype == torch.bfloat16 and model[1].bias.dtype == torch.bfloat16
    assert torch.equal(mw.masters["0.weight"], before["0.weight"])   # masters start exact

    x = torch.randn(5, 4)
    for _ in range(2):   # two micro-batches
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x).sum().backward()
    assert model[0].weight.grad is None                         # taken by the hook
    g = mw.masters["0.weight"].grad
    assert g.dtype == torch.float32 and g.abs().sum() > 0

    opt = torch.optim.SGD(mw.param_groups(set(mw.masters), 0.0), lr=0.1)
    opt.register_step_post_hook(mw.write_back)
    opt.step()
    assert torch.allclose(mw.masters["0.weight"], before["0.weight"] - 0.1 * g)
    assert torch.equal(model[0].weight, mw.masters["0.weight"].bfloat16())
    assert mw.masters["0.weight"].grad is None                  # Trainer zeroes only the model's

    with mw.fp32_view():
        assert torch.equal(model[0].weight, mw.masters["0.weight"])
    assert model[0].weight.dtype == torch.bfloat16
    mw.finish()
    assert model[0].weight.dtype == torch.float32 and torch.equal(model[0].weight, mw.masters["0.weight"])
    assert torch.equal(model[1].bias, before["1.bias"])


def _full_ft(**over):
    from medllm.config.train import SFTStage

    kw = dict(data=["d"], bf16="true", lr=1e-3, log_every=1, length_grouping=False, warmup_ratio=0.0,
              batch_size=4, grad_accum=2, max_steps=4, adapter={"method": "full"})
    kw.update(over)
    return SFTStage(**kw)


def _weights(model_dir):
    from safetensors.torch import load_file

    out = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        out.update(load_file(f))
    return out


@pytest.mark.slow
def test_full_fine_tuning_trains_bf16_weights_and_saves_fp32_masters(tmp_path, tiny_model_dir, sft_ds, monkeypatch):
    from medllm.train import run_stage

    monkeypatch.setenv(ENV, "1")
    on = run_stage("on", _full_ft(), base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path / "on", seed=3)
    monkeypatch.setenv(ENV, "0")
    off = run_stage("off", _full_ft(), base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path / "off",
                    seed=3)
    assert on.metrics.get("bf16_master_weights") is True and "bf16_master_weights" not in off.metrics
    losses = [x for _, x in on.metrics["loss_history"]]
    ref = [x for _, x in off.metrics["loss_history"]]
    assert losses[-1] < losses[0]                                  # it learns
    assert losses == pytest.approx(ref, rel=0.02)                  # like fp32 weights under autocast
    saved = _weights(on.model_dir)
    w = saved["model.layers.0.mlp.down_proj.weight"]
    assert w.dtype == torch.float32
    assert not torch.equal(w, w.bfloat16().float())                # the masters, not the rounded bf16 weights
    base = _weights(tiny_model_dir)["model.layers.0.mlp.down_proj.weight"].float()
    assert not torch.equal(w, base)


@pytest.mark.slow
def test_resume_with_master_weights_matches_uninterrupted(tmp_path, tiny_model_dir, sft_ds, monkeypatch):
    from medllm.train import run_stage

    monkeypatch.setenv(ENV, "1")
    cfg = _full_ft(max_steps=4, save_every=2)
    ref = run_stage("ref", cfg, base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path / "ref", seed=3)
    # the same run stopped after its step-2 checkpoint: only that checkpoint is left
    part = tmp_path / "part"
    shutil.copytree(tmp_path / "ref" / "checkpoints" / "checkpoint-2", part / "checkpoints" / "checkpoint-2")
    res = run_stage("part", cfg, base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=part, seed=3)
    a, b = _weights(ref.model_dir), _weights(res.model_dir)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
def test_frozen_embeddings_compute_in_bf16_and_are_saved_exact(tmp_path, tiny_model_dir, sft_ds, monkeypatch):
    """adapter.freeze_embeddings under bf16 master weights: the vocabulary matrices get no gradient and
    leave the stage bit-identical to the base (fp32 originals, not bf16-rounded), every layer trains."""
    from medllm.train import run_stage

    monkeypatch.setenv(ENV, "1")
    cfg = _full_ft(adapter={"method": "full", "freeze_embeddings": True})
    res = run_stage("fe", cfg, base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path, seed=3)
    assert res.metrics.get("bf16_master_weights") is True
    before, after = _weights(tiny_model_dir), _weights(res.model_dir)
    vocab = [k for k in before if "embed_tokens" in k or "lm_head" in k]
    layers = [k for k in before if k.endswith("proj.weight")]
    assert vocab and layers
    for k in vocab:
        assert after[k].dtype == before[k].dtype and torch.equal(after[k], before[k]), k
    assert all(not torch.equal(before[k], after[k]) for k in layers)
    assert res.metrics["trainable_params"] == sum(before[k].numel() for k in before if k not in vocab)
    losses = [x for _, x in res.metrics["loss_history"]]
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_best_checkpoint_is_the_final_model_exactly(tmp_path, tiny_model_dir, sft_ds, monkeypatch):
    """eval_every (best by validation) with bf16 master weights: the stage's model is the best
    checkpoint's fp32 weights bit for bit, not a bf16 round trip of them."""
    import json

    from medllm.train import run_stage

    monkeypatch.setenv(ENV, "1")
    # a learning rate that diverges: validation is best after step 1, so the end reloads checkpoint-1
    cfg = _full_ft(max_steps=4, val_fraction=0.25, eval_every=1, lr=2.0)
    res = run_stage("best", cfg, base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path, seed=3)
    assert res.metrics.get("bf16_master_weights") is True
    best = json.loads((tmp_path / "checkpoints" / "BEST.json").read_text())["checkpoint"]
    assert best != "checkpoint-4"   # an earlier checkpoint was reloaded at the end
    saved, final = _weights(tmp_path / "checkpoints" / best), _weights(res.model_dir)
    assert saved.keys() == final.keys()
    for k in saved:
        assert final[k].dtype == torch.float32 and torch.equal(saved[k], final[k]), k
    w = final["model.layers.0.mlp.down_proj.weight"]
    assert not torch.equal(w, w.bfloat16().float())
