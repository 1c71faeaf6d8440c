"""Base-weight memory of one model loaded as fp32, bf16 and NF4 (QLoRA's 4-bit base).

Each load runs in its own fresh process (so one load's freed pages cannot hide the next
one's growth) through ``medllm.models.load_causal_lm``, as a training stage loads its base.
Reported per format: bytes held by parameters and buffers (for NF4 plus the quantization
state: absmax, nested absmax, code book), RSS growth over the load and the peak RSS
growth, after one forward pass (so lazily mapped weights are resident). RSS is split into
anonymous and file-backed pages: an fp32 checkpoint loaded as fp32 can stay mapped from the
safetensors file, any conversion (bf16, NF4) copies into anonymous memory. Ratios are
against fp32.

    .venv/bin/python bench/qlora_memory.py [--model smollm2-135m-instruct]

Writes bench/results/qlora_memory-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import ratio, write_result  # noqa: E402

FORMATS = {"fp32": dict(dtype="float32"), "bf16": dict(dtype="bfloat16"),
           "nf4": dict(dtype="bfloat16", quantize="nf4")}


def _rss_mb() -> dict:
    """Resident memory split as Linux reports it: anonymous (weights copied into process
    memory) and file-backed (safetensors pages mapped straight from disk)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024  # KiB
    return out


def _quant_state_bytes(model) -> int:
    """Bytes of the NF4 quantization state, which lives outside parameters and buffers."""
    total = 0
    for p in model.parameters():
        qs = getattr(p, "quant_state", None)
        if qs is None:
            continue
        for t in (qs.absmax, qs.code, getattr(getattr(qs, "state2", None), "absmax", None),
                  getattr(getattr(qs, "state2", None), "code", None), getattr(qs, "offset", None)):
            if t is not None:
                total += t.numel() * t.element_size()
    return total


def measure_one(model_name: str, fmt: str) -> dict:
    """Runs in the child process: load once, report bytes and RSS growth."""
    import gc
    import resource

    import medllm  # noqa: F401  (offline guard before transformers)
    import torch
    import transformers  # noqa: F401
    from medllm.models import ensure_local, load_causal_lm

    folder = ensure_local(model_name)
    if fmt == "nf4":
        import bitsandbytes  # noqa: F401  (its import cost is not the model's)
        import peft  # noqa: F401
    gc.collect()
    rss0, peak0 = _rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model, _ = load_causal_lm(folder, device="cpu", **FORMATS[fmt])
    with torch.no_grad():  # one forward touches every weight: lazily mapped pages become resident
        model(input_ids=torch.tensor([[1, 2, 3, 4]]))
    gc.collect()
    rss1, peak1 = _rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    qstate = _quant_state_bytes(model)
    import bitsandbytes as bnb

    four_bit = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    dtypes = sorted({str(p.dtype).replace("torch.", "") for p in model.parameters()})
    return {"param_bytes": params, "buffer_bytes": buffers, "quant_state_bytes": qstate,
            "weights_mb": round((params + buffers + qstate) / 2**20, 1),
            "rss_delta_mb": round(rss1["VmRSS"] - rss0["VmRSS"], 1),
            "rss_anon_delta_mb": round(rss1["RssAnon"] - rss0["RssAnon"], 1),
            "rss_file_delta_mb": round(rss1["RssFile"] - rss0["RssFile"], 1),
            "peak_rss_delta_mb": round(max(peak1 - peak0, 0.0), 1),
            "linear4bit_modules": four_bit, "param_dtypes": dtypes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--one", choices=list(FORMATS), help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.model, args.one)))
        return
    rows = {}
    for fmt in FORMATS:
        out = subprocess.run([sys.executable, __file__, "--model", args.model, "--one", fmt],
                             check=True, capture_output=True, text=True)
        rows[fmt] = json.loads(out.stdout.strip().splitlines()[-1])
    base = rows["fp32"]
    for fmt, r in rows.items():
        r["weights_vs_fp32"] = ratio(r["weights_mb"], base["weights_mb"])
        r["rss_delta_vs_fp32"] = ratio(r["rss_delta_mb"], base["rss_delta_mb"])
    write_result("qlora_memory", {"model": args.model, "device": "cpu", "formats": rows})


if __name__ == "__main__":
    main()
