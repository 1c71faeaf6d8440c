"""Model registry: names, local folders, GGUF, safety (no pickle), manifests."""
from __future__ import annotations

import json

import pytest

from medllm.models.convert import verify_manifest
from medllm.models.loading import UnsafeWeights, load_causal_lm, model_folder
from medllm.models.registry import ModelNotFound, list_models, resolve


def test_resolve_kinds(tmp_path, tiny_model_dir):
    assert resolve("smollm2-135m-instruct").kind == "builtin"
    assert resolve("tiny-llama").kind == "tiny"
    assert resolve(str(tiny_model_dir)).kind == "hf_dir"
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF")
    assert resolve(str(g)).kind == "gguf"
    names = {r["name"] for r in list_models()}
    assert {"smollm2-135m-instruct", "tiny-llama"} <= names


def test_unknown_model_error_says_no_download(tmp_path):
    with pytest.raises(ModelNotFound, match="never downloads"):
        resolve("meta-llama/Llama-3-8B")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve(str(tmp_path / "empty"))


def test_tiny_model_is_seeded_and_has_chat_template(tiny_model_dir, tiny_tokenizer):
    from safetensors.torch import load_file

    man = json.loads((tiny_model_dir / "medllm_manifest.json").read_text())
    assert man["source"]["type"] == "tiny" and man["source"]["seed"] == 0
    assert verify_manifest(tiny_model_dir) == []
    weights = load_file(str(tiny_model_dir / "model.safetensors"))
    assert any(t.abs().sum() > 0 for t in weights.values())
    text = tiny_tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                              add_generation_prompt=True)
    assert "<|im_start|>assistant" in text


def test_rebuilding_tiny_model_is_deterministic(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    from medllm.models.convert import build_tiny
    from medllm.models.registry import TINY_CONFIGS

    other = build_tiny("tiny-llama", TINY_CONFIGS["tiny-llama"], tmp_path / "again")
    a = load_file(str(tiny_model_dir / "model.safetensors"))
    b = load_file(str(other / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_manifest_detects_tampering(tmp_path, tiny_model_dir):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    problems = verify_manifest(copy)
    assert len(problems) == 1 and "config.json" in problems[0]


def test_pickle_only_folder_is_refused(tmp_path, tiny_model_dir):
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(UnsafeWeights, match="pickle"):
        model_folder(str(folder))


def test_load_local_folder(tiny_model_dir):
    model, tok = load_causal_lm(str(tiny_model_dir), dtype="float32")
    assert model.config.num_hidden_layers == 2 and tok.pad_token is not None


def test_the_output_head_gets_a_contiguous_input_even_for_a_frozen_model(tiny_model_dir):
    """generate's last-position slice is strided; with a frozen (or adapter-merged) head weight
    torch's CPU linear then copies the weight once per row (1.5 s per batch for SmolLM2's head)."""
    import torch

    model, _ = load_causal_lm(str(tiny_model_dir), dtype="float32")
    for p in model.parameters():
        p.requires_grad_(False)                     # as after an adapter merge
    seen = []
    model.get_output_embeddings().register_forward_pre_hook(lambda m, a: seen.append(a[0].is_contiguous()))
    ids = torch.randint(0, model.config.vocab_size, (3, 7))
    with torch.inference_mode():
        out = model(input_ids=ids, logits_to_keep=1)
        full = model(input_ids=ids).logits[:, -1:, :]
    assert seen == [True, True]
    torch.testing.assert_close(out.logits, full)
