"""Measure the CPU peak memory of a short pretrain stage, for checking ``medllm plan``.

Run as a subprocess (its own peak): ``python tests/plan/peak_rss.py MODEL METHOD BATCH SEQ``.
Prints JSON: peak RSS minus the RSS after imports (before the model is loaded), in GB.
"""
from __future__ import annotations

import ctypes
import gc
import json
import sys
import tempfile


def rss_kb(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def reset_peak() -> None:
    """Restart the kernel's peak-RSS counter (VmHWM): a first-time build of the model in
    ``ensure_local`` (a fresh cache, as in CI) must not count as the stage's peak."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def main(model: str, method: str, batch: int, seq: int, steps: int = 3) -> dict:
    import torch
    from datasets import Dataset

    from medllm.config.train import PretrainStage
    from medllm.models.registry import ensure_local
    from medllm.train import run_stage

    torch.set_num_threads(1)
    base = ensure_local(model)
    words = "hypertension is treated with lifestyle change and drugs such as ACE inhibitors ".split()
    rows = [{"text": " ".join(words[(i + j) % len(words)] for j in range(seq * 2)), "source": "t"}
            for i in range(steps * batch * 2)]
    ds = Dataset.from_list(rows)
    stage = PretrainStage(data=["t"], adapter={"method": method}, max_steps=steps, batch_size=batch,
                          max_seq_len=seq, bf16="false", log_every=1, lr=1e-4)
    # Warm-up: a one-step run of the same code path touches every library page, so the
    # baseline below holds the process's fixed cost and the delta is the stage's own memory.
    warm = stage.model_copy(update={"max_steps": 1, "batch_size": 1, "max_seq_len": 16})
    with tempfile.TemporaryDirectory() as tmp:
        run_stage("pt", warm, base_model=base, datasets={"t": ds}, out_dir=tmp)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)   # hand freed heap back so RSS is not inflated
    baseline = rss_kb()
    reset_peak()
    with tempfile.TemporaryDirectory() as tmp:
        res = run_stage("pt", stage, base_model=base, datasets={"t": ds}, out_dir=tmp)
    peak = rss_kb("VmHWM")
    return {"model": model, "method": method, "batch": batch, "seq": seq, "steps": steps,
            "tokens": res.metrics.get("tokens"), "baseline_gb": baseline / 1e6, "peak_gb": peak / 1e6,
            "delta_gb": (peak - baseline) / 1e6}


if __name__ == "__main__":
    m, meth, b, s = sys.argv[1:5]
    print(json.dumps(main(m, meth, int(b), int(s))))
