"""One decoder forward+backward of SmolLM2-135M on CPU, per attention / compile mode.

The A/B behind ``train.fast_lm``'s eager attention for narrow CPU pieces and behind not
compiling by default: fp32 weights under bf16 autocast (as CPU training runs them), random
token ids of ``--rows x --width``, a mean-square loss on the last hidden state (no head), each
mode in its own process, ``--repeats`` steps each (the first one includes torch.compile's
compile time). Writes bench/results/cpu_step_ab-<date>-<time>.json.

    .venv/bin/python bench/cpu_step_ab.py [--modes sdpa,eager,compile] [--rows 8] [--width 160]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"


def child(mode: str, rows: int, width: int, repeats: int) -> dict:
    os.environ.setdefault("MEDLLM_QUIET", "1")
    import torch

    import medllm  # noqa: F401  (offline guard)
    from medllm.models import load_causal_lm
    from medllm.models.registry import ensure_local

    model, _ = load_causal_lm(ensure_local(MODEL), dtype="float32", for_training=True)
    model.config.use_cache = False
    if mode == "eager":
        model.config._attn_implementation = "eager"
    if mode == "compile":
        for layer in model.model.layers:
            layer.compile(dynamic=True)
    ids = torch.randint(100, 20000, (rows, width))
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = (model.model(input_ids=ids).last_hidden_state.float() ** 2).mean()
        loss.backward()
        seconds.append(round(time.perf_counter() - t, 2))
    return {"mode": mode, "seconds": seconds, "loadavg": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="sdpa,eager,compile")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.rows, a.width, a.repeats)))
        return
    out = {"model": MODEL, "rows": a.rows, "width": a.width, "loadavg_start": os.getloadavg(), "modes": []}
    for mode in a.modes.split(","):
        res = subprocess.run([sys.executable, __file__, "--child", mode, "--rows", str(a.rows), "--width",
                              str(a.width), "--repeats", str(a.repeats)], capture_output=True, text=True, check=True)
        out["modes"].append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(out["modes"][-1], flush=True)
    out["when"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    path = REPO / "bench" / "results" / f"cpu_step_ab-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
