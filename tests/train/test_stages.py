"""Each stage end to end on tiny-llama: outputs written, trainable parameters changed."""
from __future__ import annotations

import json

import pytest

from medllm.config.train import DPOStage, PretrainStage, RejectionSamplingStage, RewardStage, SFTStage
from medllm.train import run_stage

pytestmark = pytest.mark.slow
FAST = dict(max_steps=3, batch_size=4, log_every=1, lr=1e-3, bf16="false")


def _check_outputs(res, stage_dir):
    assert res.metrics["params_changed"] is True
    if res.adapter_dir is not None and res.metrics["type"] != "reward":  # LoRA: adapter + lineage, no full copy
        lineage = json.loads((res.model_dir / "model.json").read_text())
        assert lineage["adapters"][-1] == str(res.adapter_dir.resolve()) and not (stage_dir / "merged").exists()
        assert (res.adapter_dir / "medllm_manifest.json").is_file()
    else:
        assert (res.model_dir / "model.safetensors").is_file() and (res.model_dir / "tokenizer.json").is_file()
        assert (res.model_dir / "medllm_manifest.json").is_file()
    assert (stage_dir / "loss_curve.png").stat().st_size > 1000
    assert any((stage_dir / "tensorboard").iterdir())
    saved = json.loads((stage_dir / "metrics.json").read_text())
    assert saved["global_step"] == 3 and saved["train_loss"] > 0


def test_sft_lora_with_validation_keeps_best(tmp_path, tiny_model_dir, sft_ds):
    import torch

    from medllm.models import load_causal_lm

    st = SFTStage(data=["d"], val_fraction=0.25, eval_every=1, **FAST)
    res = run_stage("sft", st, base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path)
    _check_outputs(res, tmp_path)
    assert res.adapter_dir is not None and (res.adapter_dir / "adapter_config.json").is_file()
    evals = [e for _, e in res.metrics["eval_history"]]
    best = json.loads((tmp_path / "checkpoints" / "BEST.json").read_text())["checkpoint"]
    assert best == f"checkpoint-{res.metrics['eval_history'][evals.index(min(evals))][0]}"
    assert res.metrics["eval_loss"] == pytest.approx(min(evals), abs=1e-5)  # final model = best checkpoint
    # LoRA merged == base + adapter, on the same input
    merged, tok = load_causal_lm(res.model_dir, dtype="float32")
    stacked, _ = load_causal_lm(tiny_model_dir, dtype="float32", adapter=res.adapter_dir)
    ids = tok("What is 3 plus 3?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, stacked(ids).logits, atol=1e-4)


def test_pretrain_full(tmp_path, tiny_model_dir, text_ds):
    st = PretrainStage(data=["t"], adapter={"method": "full"}, max_seq_len=32, **FAST)
    res = run_stage("pt", st, base_model=tiny_model_dir, datasets={"t": text_ds}, out_dir=tmp_path)
    _check_outputs(res, tmp_path)
    assert res.adapter_dir is None
    assert res.metrics["tokens"] == 3 * 4 * 32  # fixed blocks, no padding


def test_reward_reports_pairwise_accuracy(tmp_path, tiny_model_dir, pref_ds):
    from transformers import AutoModelForSequenceClassification

    st = RewardStage(data=["p"], val_fraction=0.25, **FAST)
    res = run_stage("rm", st, base_model=tiny_model_dir, datasets={"p": pref_ds}, out_dir=tmp_path)
    _check_outputs(res, tmp_path)
    assert 0.0 <= res.metrics["pairwise_accuracy"] <= 1.0 and res.metrics["accuracy_on"] == "validation"
    assert AutoModelForSequenceClassification.from_pretrained(res.model_dir).config.num_labels == 1


def test_dpo(tmp_path, tiny_model_dir, pref_ds):
    st = DPOStage(data=["p"], **FAST)
    res = run_stage("dpo", st, base_model=tiny_model_dir, datasets={"p": pref_ds}, out_dir=tmp_path)
    _check_outputs(res, tmp_path)


def test_rejection_sampling_rule_scorer(tmp_path, tiny_model_dir, sft_ds):
    st = RejectionSamplingStage(data=["d"], k=3, top_n=1, max_new_tokens=6, scorer="rule", max_samples=4, **FAST)
    res = run_stage("rs", st, base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path)
    _check_outputs(res, tmp_path)
    sampled = [json.loads(x) for x in (tmp_path / "sampled.jsonl").read_text().splitlines()]
    selected = [json.loads(x) for x in (tmp_path / "selected.jsonl").read_text().splitlines()]
    assert len(sampled) == 4 * 3 and len(selected) <= 4
    for s in selected:  # each kept answer is the best-scored sample of its prompt
        same = [x["score"] for x in sampled if x["prompt"] == s["messages"][:-1]]
        assert s["score"] == max(same)


def test_clear_errors(tmp_path, tiny_model_dir, sft_ds):
    from medllm.train.adapters import AdapterError
    from medllm.train.tokenize import SequenceTooLong

    with pytest.raises(AdapterError, match="available: .*q_proj"):
        run_stage("x", SFTStage(data=["d"], adapter={"target_modules": ["qkv"]}, **FAST),
                  base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path / "a")
    with pytest.raises(SequenceTooLong, match="model context"):
        run_stage("x", SFTStage(data=["d"], max_seq_len=100000, **FAST),
                  base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path / "b")


def test_sft_full_with_frozen_bottom_layers(tmp_path, tiny_model_dir, sft_ds):
    """adapter.freeze_layers: embeddings (and the head tied to them) and the first N decoder layers keep their
    base weights, every layer above changes, and the frozen part gets no gradient or optimizer state."""
    from safetensors.torch import load_file

    st = SFTStage(data=["d"], adapter={"method": "full", "freeze_layers": 1}, **FAST)
    res = run_stage("sft", st, base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path)
    _check_outputs(res, tmp_path)
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(res.model_dir / "model.safetensors")
    frozen = [k for k in before if "embed_tokens" in k or ".layers.0." in k]
    trained = [k for k in before if ".layers.1." in k and k.endswith("proj.weight")]
    assert frozen and trained
    assert all(before[k].equal(after[k]) for k in frozen), [k for k in frozen if not before[k].equal(after[k])]
    assert all(not before[k].equal(after[k]) for k in trained)
    assert res.metrics["trainable_params"] < sum(v.numel() for v in before.values())


def test_freeze_layers_beyond_the_model_is_a_clear_error(tmp_path, tiny_model_dir, sft_ds):
    from medllm.train.adapters import AdapterError

    st = SFTStage(data=["d"], adapter={"method": "full", "freeze_layers": 99}, **FAST)
    with pytest.raises(AdapterError, match="freeze_layers=99"):
        run_stage("sft", st, base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path)
