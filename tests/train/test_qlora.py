"""QLoRA on CPU: bitsandbytes 0.50 quantizes to NF4 on the CPU too, so the real thing is tested
here, not a LoRA stand-in: the base linears are 4-bit, only the adapters train, and the
stage's merged model (dequantized base + adapter) loads and generates."""
from __future__ import annotations

import json

import pytest
import torch

from medllm.config.train import SFTStage
from medllm.train import run_stage

bnb = pytest.importorskip("bitsandbytes")


def _spy_trained_model(monkeypatch):
    """Record the model handed to the trainer, with a copy of its adapter weights before training."""
    import medllm.train.causal as causal

    seen: dict = {}
    real = causal.train_rows

    def spy(ctx, model, *args, **kwargs):
        seen["model"] = model
        seen["before"] = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
        return real(ctx, model, *args, **kwargs)

    monkeypatch.setattr(causal, "train_rows", spy)
    return seen


def test_qlora_sft_stage_trains_adapters_on_a_4bit_base(tmp_path, tiny_model_dir, sft_ds, monkeypatch):
    from medllm.models import load_causal_lm, materialize_merged

    seen = _spy_trained_model(monkeypatch)
    st = SFTStage(data=["d"], adapter={"method": "qlora", "r": 8, "alpha": 16, "dropout": 0.0},
                  max_steps=12, batch_size=8, log_every=1, lr=5e-3, warmup_ratio=0.0,
                  lr_scheduler="constant", bf16="false")
    res = run_stage("qlora", st, base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path, seed=0)

    model = seen["model"]
    four_bit = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    plain = [n for n, m in model.named_modules()
             if type(m) is torch.nn.Linear and "lora_" not in n and m is not model.get_output_embeddings()]
    # every decoder projection (2 layers x q,k,v,o,gate,up,down) is NF4; no full-precision one is left
    assert len(four_bit) == 2 * 7 and not plain, (four_bit, plain)
    assert {m.weight.quant_state.quant_type for _, m in model.named_modules()
            if isinstance(m, bnb.nn.Linear4bit)} == {"nf4"}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)  # the 4-bit base is frozen

    after = dict(model.named_parameters())
    changed = [n for n, before in seen["before"].items() if not torch.equal(before, after[n].detach())]
    assert len(changed) == len(seen["before"]) > 0  # every adapter matrix moved (lora_B starts at 0)
    losses = [loss for _, loss in res.metrics["loss_history"]]
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.1, losses

    # the stage keeps the adapter; the merge dequantizes into the lineage dtype and loads as a plain model
    lineage = json.loads((res.model_dir / "model.json").read_text())
    assert lineage["adapters"] == [str(res.adapter_dir.resolve())]
    merged_dir = materialize_merged(res.model_dir)
    merged, tok = load_causal_lm(merged_dir, dtype="float32", device="cpu")
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in merged.modules())
    base, _ = load_causal_lm(tiny_model_dir, dtype="float32", device="cpu")
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 3 plus 3?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        assert not torch.allclose(merged(ids).logits, base(ids).logits, atol=1e-3)  # the adapter is in it
        out = merged.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=5,
                              do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids.shape[1]
    assert isinstance(tok.decode(out[0, ids.shape[1]:]), str)
