"""Peak RSS of a short, long-sequence SFT stage on CPU, for holding ``memory_fit`` to its estimate.

Run as a subprocess (its own peak): ``python tests/train/long_seq_peak.py MODEL METHOD BATCH SEQ BUDGET_GB``.
Conversations of ~SEQ tokens with a short answer, so the decoder's activations (not the head)
dominate. Prints JSON: the stage's chosen micro-batch, the plan's estimate and the measured peak
RSS minus the RSS after a warm-up run of the same code path, in GB.
"""
from __future__ import annotations

import ctypes
import gc
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plan"))
from peak_rss import reset_peak, rss_kb  # noqa: E402  (one copy of the RSS helpers)


def main(model: str, method: str, batch: int, seq: int, budget: float, steps: int = 2) -> dict:
    import torch
    from datasets import Dataset

    from medllm.config.train import SFTStage
    from medllm.models.registry import ensure_local
    from medllm.train import run_stage
    from medllm.train.memory_fit import CPU_RUNTIME_GB

    torch.set_num_threads(1)
    base = ensure_local(model)
    from medllm.models.loading import load_tokenizer

    tok = load_tokenizer(base)
    words = "hypertension is treated with lifestyle change and drugs such as ACE inhibitors ".split()
    ids = tok(" ".join(words[j % len(words)] for j in range(seq)), add_special_tokens=False)["input_ids"]
    long_text = tok.decode(ids[: seq - 40])   # leaves room for the template and the answer
    rows = [{"messages": [{"role": "user", "content": long_text}, {"role": "assistant", "content": "yes"}]}
            for i in range(steps * batch)]
    ds = Dataset.from_list(rows)
    short = Dataset.from_list([{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}]}])
    stage = SFTStage(data=["t"], adapter={"method": method}, max_steps=steps, batch_size=batch,
                     max_seq_len=seq, bf16="false", log_every=1, lr=1e-4, cpu_memory_gb=budget)
    warm = stage.model_copy(update={"max_steps": 1, "batch_size": 1, "max_seq_len": 32, "cpu_memory_gb": 0})
    with tempfile.TemporaryDirectory() as tmp:
        run_stage("sft", warm, base_model=base, datasets={"t": short}, out_dir=tmp)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)   # hand freed heap back so the baseline is the fixed cost
    baseline = rss_kb()
    reset_peak()
    with tempfile.TemporaryDirectory() as tmp:
        res = run_stage("sft", stage, base_model=base, datasets={"t": ds}, out_dir=tmp)
    peak = rss_kb("VmHWM")
    m = res.metrics
    return {"micro_batch": m.get("micro_batch"), "grad_accum": m.get("grad_accum"),
            "forward_rows_max": m.get("forward_rows_max") or m.get("micro_batch"),
            "estimate_gb": m.get("plan_estimate_gb", CPU_RUNTIME_GB) - CPU_RUNTIME_GB, "delta_gb": (peak - baseline) / 1e6,
            "tokens": m.get("tokens"), "baseline_gb": baseline / 1e6}


if __name__ == "__main__":
    m, meth, b, s, budget = sys.argv[1:6]
    print(json.dumps(main(m, meth, int(b), int(s), float(budget))))
