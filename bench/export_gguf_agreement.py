"""Does medllm's GGUF export of a real model agree with the HF model in llama.cpp?

For each GGUF type (f16, q8_0, q4_0): export time and size, then on a few medical chat
prompts: prompt tokenization equal to HF's, greedy continuation (no penalties) compared
token by token with HF fp32, and teacher-forced logit error. Needs llama-cpp-python
(the [llamacpp] extra). Writes bench/results/export_gguf_agreement-<time>.json.

    .venv/bin/python bench/export_gguf_agreement.py [--model smollm2-135m-instruct] [--new-tokens 32]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import write_result  # noqa: E402

PROMPTS = [
    "What are the early warning signs of a stroke?",
    "A patient with type 2 diabetes asks how metformin works. Explain briefly.",
    "List three common side effects of ACE inhibitors.",
]


def hf_reference(model_dir: Path, n_new: int) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    refs = []
    for prompt in PROMPTS:
        text = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
        ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=n_new, pad_token_id=tok.pad_token_id)
            logits = model(out).logits[0].numpy()
        new = out[0, ids.shape[1]:].tolist()
        refs.append({"prompt": prompt, "text": text, "ids": ids[0].tolist(), "greedy": new,
                     "greedy_text": tok.decode(new, skip_special_tokens=True), "logits": logits})
    return refs


def llamacpp_check(gguf: Path, refs: list[dict], eos: int) -> list[dict]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=512, n_threads=2, n_batch=512, logits_all=True, verbose=False)
    rows = []
    for ref in refs:
        tokens_equal = llm.tokenize(ref["text"].encode(), add_bos=False, special=True) == ref["ids"]
        seq = ref["ids"] + ref["greedy"]
        llm.reset()
        llm.eval(seq)
        err = np.abs(np.asarray(llm.scores[: len(seq)], dtype=np.float32) - ref["logits"]).max() / ref["logits"].std()
        llm.reset()
        llm.eval(ref["ids"])
        greedy = []
        for _ in range(len(ref["greedy"])):
            nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            greedy.append(nxt)
            if nxt == eos:
                break
            llm.eval([nxt])
        agree = next((i for i, (a, b) in enumerate(zip(greedy, ref["greedy"])) if a != b), min(len(greedy), len(ref["greedy"])))
        rows.append({"prompt": ref["prompt"], "tokenization_equal": tokens_equal,
                     "greedy_identical": greedy == ref["greedy"], "agreeing_prefix_tokens": agree,
                     "n_new": len(ref["greedy"]), "max_logit_error_over_std": round(float(err), 4),
                     "llamacpp_text": llm.detokenize(greedy).decode("utf-8", "replace")})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--types", default="f16,q8_0,q4_0")
    args = ap.parse_args()

    import medllm  # noqa: F401  (offline guard before transformers)
    from medllm.export import export_gguf
    from medllm.models import ensure_local, load_tokenizer

    model_dir = ensure_local(args.model)
    refs = hf_reference(model_dir, args.new_tokens)
    eos = load_tokenizer(model_dir).eos_token_id
    results = {"model": args.model, "new_tokens": args.new_tokens,
               "hf_greedy_texts": [r["greedy_text"] for r in refs], "types": {}}
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent / "results") as tmp:
        for gguf_type in args.types.split(","):
            t0, load0 = time.perf_counter(), os.getloadavg()[0]
            path = export_gguf(model_dir, Path(tmp) / f"model-{gguf_type}.gguf", gguf_type=gguf_type)
            seconds = time.perf_counter() - t0
            rows = llamacpp_check(path, refs, eos)
            results["types"][gguf_type] = {
                "export_seconds": round(seconds, 2), "loadavg_1m_at_export": load0,
                "size_mb": round(path.stat().st_size / 2**20, 1),
                "all_tokenization_equal": all(r["tokenization_equal"] for r in rows),
                "all_greedy_identical": all(r["greedy_identical"] for r in rows),
                "prompts": rows,
            }
    write_result("export_gguf_agreement", results)


if __name__ == "__main__":
    main()
