"""The exported GGUF runs in llama.cpp and agrees with the HF model: same prompt tokens,
close logits, same greedy continuation (skipped when llama-cpp-python is not installed;
see the [llamacpp] extra in pyproject.toml for how to build it)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                reason="llama-cpp-python not installed (optional [llamacpp] extra)")

MESSAGES = [{"role": "user", "content": "A 60-year-old has chest pain and is sweating. What should he do?"}]
N_NEW = 16


@pytest.fixture(scope="module")
def hf_side(sharp_model_dir):
    """Prompt ids, HF greedy continuation, and HF logits over prompt + continuation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(sharp_model_dir)
    model = AutoModelForCausalLM.from_pretrained(sharp_model_dir, dtype=torch.float32).eval()
    text = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=N_NEW, min_new_tokens=N_NEW, pad_token_id=tok.pad_token_id)
        logits = model(out).logits[0].numpy()
    return {"text": text, "prompt": ids[0].tolist(), "greedy": out[0, ids.shape[1]:].tolist(), "logits": logits}


@pytest.fixture(scope="module")
def exported(sharp_model_dir, tmp_path_factory):
    from medllm.export import export_gguf

    out = tmp_path_factory.mktemp("llamacpp")
    return {t: export_gguf(sharp_model_dir, out / f"sharp-{t}.gguf", gguf_type=t) for t in ("f16", "q8_0")}


# Logit error relative to the HF logits' std: f16 weights differ from fp32 only by rounding;
# Q8_0 also quantizes activations inside ggml's dot products, amplified by the x6 model.
@pytest.mark.parametrize("gguf_type, max_err, mean_err", [("f16", 0.02, 0.005), ("q8_0", 0.3, 0.05)])
def test_gguf_in_llamacpp_agrees_with_hf(exported, hf_side, gguf_type, max_err, mean_err):
    from llama_cpp import Llama

    llm = Llama(model_path=str(exported[gguf_type]), n_ctx=256, n_threads=2, n_batch=256,
                logits_all=True, verbose=False, seed=0)
    # 1. the GGUF tokenizer (vocab, merges, pre-tokenizer, special tokens) splits the chat prompt identically
    assert llm.tokenize(hf_side["text"].encode("utf-8"), add_bos=False, special=True) == hf_side["prompt"]

    # 2. teacher-forced logits over prompt + HF continuation are close to HF's
    seq = hf_side["prompt"] + hf_side["greedy"]
    llm.reset()
    llm.eval(seq)
    ref = hf_side["logits"]
    err = np.abs(np.asarray(llm.scores[: len(seq)], dtype=np.float32) - ref) / ref.std()
    assert err.max() < max_err and err.mean() < mean_err, (err.max(), err.mean())

    # 3. llama.cpp's own greedy decode gives the same continuation
    llm.reset()
    llm.eval(hf_side["prompt"])
    greedy = []
    for _ in range(N_NEW):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        greedy.append(nxt)
        llm.eval([nxt])
    if gguf_type == "f16":
        assert greedy == hf_side["greedy"]
        return
    # Q8_0: identical up to the first step where HF itself is within quantization noise of
    # llama.cpp's pick (a near-tie); any divergence at a clear HF margin is a bug.
    for i, (ours, theirs) in enumerate(zip(greedy, hf_side["greedy"])):
        if ours != theirs:
            row = ref[len(hf_side["prompt"]) - 1 + i]
            margin = (row[theirs] - row[ours]) / ref.std()
            assert margin < err.max(), f"step {i}: HF prefers its token by {margin:.3f} std, beyond Q8_0 noise"
            break
