"""The eval cache is keyed on the model's content: a stage retrained in place (same folder,
new weights) is scored afresh, while an unchanged model reuses every cached answer."""
from __future__ import annotations

import shutil

import torch

from medllm.config.eval import EvalTask


def _eval(model_dir, out):
    from medllm.eval import evaluate

    res = evaluate(model_dir, [EvalTask(task="demo_mcq", mode="loglik", limit=6)], out, batch_size=4,
                   dtype="float32", safety=False, report=False)
    return res["tasks"]["demo_mcq:loglik"]


def test_retrained_in_place_reuses_no_cached_answer(tiny_model_dir, tmp_path):
    from medllm.models import load_causal_lm

    stage = tmp_path / "stages" / "sft" / "merged"
    shutil.copytree(tiny_model_dir, stage)
    out = tmp_path / "eval"
    first = _eval(stage, out)
    again = _eval(stage, out)
    assert any("6 of 6 examples reused" in n for n in again["notes"])          # the cache works
    # "retrain" the stage: new weights written into the same folder
    model, tok = load_causal_lm(stage, dtype="float32")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    model.save_pretrained(stage, safe_serialization=True)
    retrained = _eval(stage, out)
    assert not any("reused" in n for n in retrained["notes"])
    cache = next((out / "cache").glob("demo_mcq_loglik*.jsonl"))
    assert len(cache.read_text().splitlines()) == 12                          # 6 old + 6 new answers


def test_dtype_is_part_of_the_key(tiny_model_dir):
    from medllm.eval.runner import model_content_id

    assert model_content_id(tiny_model_dir, dtype="float32") != model_content_id(tiny_model_dir, dtype="bfloat16")
    assert model_content_id(tiny_model_dir, dtype="float32") == model_content_id(tiny_model_dir, dtype="float32")


def test_generation_chunks_are_near_equal_and_keep_every_item_once():
    from medllm.eval.runner import even_chunks

    chunks = even_chunks(list(range(150)), 48)
    assert [len(c) for c in chunks] == [38, 38, 38, 36]
    assert sum(chunks, []) == list(range(150))
    assert [len(c) for c in even_chunks(list(range(7)), 32)] == [7]
    assert even_chunks([], 32) == []
