"""medllm's serving engine vs llama-cpp-python on the same SmolLM2-135M-Instruct weights.

Both sides get the same chat-templated prompts and generate exactly ``--tokens``
tokens per stream (EOS ignored) with the same sampling settings:
  * medllm: BatchingEngine (continuous batching) on the embedded Q4_1 GGUF
    dequantized to bf16 (AMX) — what `medllm serve smollm2-135m-instruct` runs;
  * llama.cpp: llama-cpp-python ``Llama.generate`` on the Q4_1 GGUF itself, streams
    served one after another (its high-level API/server decodes one sequence at a time);
  * medllm-hybrid: `medllm serve --backend hybrid` (llama.cpp for a lone stream,
    the batching engine when requests overlap).
Concurrency 1 and 8, interleaved rounds; medians reported, with load averages.

Build llama-cpp-python (not a medllm dependency) with:
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON" \
      pip install llama-cpp-python==0.3.36
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import ratio, write_result  # noqa: E402

import medllm  # noqa: E402,F401  (offline guard before transformers)

QUESTIONS = [
    "What are the first-line treatments for type 2 diabetes?",
    "Explain the difference between systolic and diastolic blood pressure.",
    "What are common side effects of metformin?",
    "How is community-acquired pneumonia diagnosed?",
    "What does a high TSH level indicate?",
    "List risk factors for deep vein thrombosis.",
    "When should antibiotics be used for otitis media in children?",
    "What is the mechanism of action of ACE inhibitors?",
]


def summarise(streams: list[dict], t0: float) -> dict:
    """streams: per stream {first, last, n} (monotonic seconds)."""
    total = sum(s["n"] for s in streams)
    end = max(s["last"] for s in streams)
    decode_tokens = sum(s["n"] - 1 for s in streams)
    decode_time = end - min(s["first"] for s in streams)
    return {"streams": len(streams), "tokens": total, "wall_s": round(end - t0, 3),
            "aggregate_tok_s": round(total / (end - t0), 2),
            "decode_tok_s": round(decode_tokens / decode_time, 2) if decode_time > 0 else None,
            "ttft_mean_s": round(statistics.mean(s["first"] - t0 for s in streams), 3),
            "ttft_max_s": round(max(s["first"] - t0 for s in streams), 3)}


def run_ours(engine, prompts: list[list[int]], tokens: int, sampling: dict) -> dict:
    from medllm.serve.engine import GenRequest
    from medllm.serve.sampling import SamplingParams

    streams = [{"first": None, "last": None, "n": 0} for _ in prompts]
    done = threading.Event()
    left = [len(prompts)]
    lock = threading.Lock()

    def cb_for(i):
        def cb(ev):
            now = time.monotonic()
            s = streams[i]
            if ev.kind == "delta":
                s["first"] = s["first"] or now
                s["last"] = now
            else:
                s["n"] = ev.completion_tokens
                s["first"] = s["first"] or now
                s["last"] = now
                with lock:
                    left[0] -= 1
                    if left[0] == 0:
                        done.set()
        return cb

    t0 = time.monotonic()
    for i, ids in enumerate(prompts):
        engine.submit(GenRequest(ids, SamplingParams(**sampling, max_tokens=tokens, seed=i, ignore_eos=True),
                                 cb_for(i)))
    done.wait()
    return summarise(streams, t0)


def run_llamacpp(llm, prompts: list[list[int]], tokens: int, sampling: dict) -> dict:
    """All streams arrive at t0; one Llama decodes them in turn, as llama-cpp-python's server does."""
    streams = []
    t0 = time.monotonic()
    for i, ids in enumerate(prompts):
        llm.set_seed(i)
        s = {"first": None, "last": None, "n": 0}
        for _tok in llm.generate(ids, top_k=sampling["top_k"], top_p=sampling["top_p"], min_p=0.0,
                                 temp=sampling["temperature"], repeat_penalty=sampling["repetition_penalty"],
                                 reset=True):
            now = time.monotonic()
            s["first"] = s["first"] or now
            s["last"] = now
            s["n"] += 1
            if s["n"] >= tokens:
                break
        streams.append(s)
    return summarise(streams, t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=64, help="tokens generated per stream")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repetitions (median reported)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--dtype", default="auto", help="medllm engine dtype (auto = bf16 on AMX)")
    args = ap.parse_args()

    import torch

    from medllm.models import load_causal_lm
    from medllm.models.convert import locate_embedded_gguf
    from medllm.serve.engine import BatchingEngine
    from medllm.serve.llamacpp import HybridEngine, LlamaCppEngine, open_llama

    gguf = locate_embedded_gguf()
    model, tok = load_causal_lm("smollm2-135m-instruct", dtype=args.dtype)
    engine = BatchingEngine(model, tok, max_batch=max(args.concurrency), max_queue=64).start()
    llm = open_llama(gguf, n_threads=os.cpu_count())
    # `medllm serve --backend hybrid`: llama.cpp for a lone stream, batching under concurrency
    # (its llama.cpp worker shares `llm`; the sides never run at the same time)
    hybrid = HybridEngine(LlamaCppEngine(llm, tok).start(), engine)
    sampling = dict(temperature=0.6, top_p=0.9, top_k=50, repetition_penalty=1.2)  # server defaults
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
               for q in QUESTIONS]
    prompt_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    # warm-up both sides (first-call allocations, AMX kernels)
    run_ours(engine, prompt_ids[:1], 4, sampling)
    run_llamacpp(llm, prompt_ids[:1], 4, sampling)

    rows: dict[str, dict[str, list]] = {}
    for r in range(args.rounds):
        for c in args.concurrency:
            ids = [prompt_ids[i % len(prompt_ids)] for i in range(c)]
            sides = [("medllm", run_ours, engine), ("llama.cpp", run_llamacpp, llm),
                     ("medllm-hybrid", run_ours, hybrid)]
            for side, fn, obj in (sides[::-1] if r % 2 else sides):   # alternate the order
                res = fn(obj, ids, args.tokens, sampling)
                res["loadavg_1m"] = os.getloadavg()[0]
                rows.setdefault(f"c{c}", {}).setdefault(side, []).append(res)
                print(f"round {r} c={c} {side}: {res}", flush=True)
    hybrid.stop()

    def med(runs, key):
        vals = [x[key] for x in runs if x[key] is not None]
        return round(statistics.median(vals), 3) if vals else None

    summary = {}
    for c_key, sides in rows.items():
        ours, theirs = sides["medllm"], sides["llama.cpp"]
        summary[c_key] = {
            "medllm_decode_tok_s": med(ours, "decode_tok_s"), "llamacpp_decode_tok_s": med(theirs, "decode_tok_s"),
            "decode_ratio": ratio(med(ours, "decode_tok_s"), med(theirs, "decode_tok_s")),
            "medllm_aggregate_tok_s": med(ours, "aggregate_tok_s"),
            "llamacpp_aggregate_tok_s": med(theirs, "aggregate_tok_s"),
            "aggregate_ratio": ratio(med(ours, "aggregate_tok_s"), med(theirs, "aggregate_tok_s")),
            "medllm_ttft_mean_s": med(ours, "ttft_mean_s"), "llamacpp_ttft_mean_s": med(theirs, "ttft_mean_s"),
            "ttft_ratio_llamacpp_over_medllm": ratio(med(theirs, "ttft_mean_s"), med(ours, "ttft_mean_s")),
        }
        hyb = sides["medllm-hybrid"]
        summary[c_key].update({
            "hybrid_decode_tok_s": med(hyb, "decode_tok_s"),
            "hybrid_decode_ratio": ratio(med(hyb, "decode_tok_s"), med(theirs, "decode_tok_s")),
            "hybrid_aggregate_ratio": ratio(med(hyb, "aggregate_tok_s"), med(theirs, "aggregate_tok_s")),
            "hybrid_ttft_mean_s": med(hyb, "ttft_mean_s"),
            "ttft_ratio_llamacpp_over_hybrid": ratio(med(theirs, "ttft_mean_s"), med(hyb, "ttft_mean_s")),
        })
    write_result("serve_vs_llamacpp", {
        "weights": {"medllm": f"{gguf.name} dequantized to {str(next(model.parameters()).dtype)}",
                    "llama.cpp": f"{gguf.name} (Q4_1, as shipped)",
                    "medllm-hybrid": "Q4_1 GGUF in llama.cpp for a lone stream, the bf16 model when batching"},
        "tokens_per_stream": args.tokens, "sampling": sampling, "torch_threads": torch.get_num_threads(),
        "summary": summary, "details": rows,
    })


if __name__ == "__main__":
    main()
