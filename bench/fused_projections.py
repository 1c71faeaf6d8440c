"""Would fused QKV and gate/up projections train faster? One SmolLM2-135M layer's five
input-side projections (q 576, k 192, v 192, gate 1536, up 1536 outputs), bf16, forward +
backward, as five separate matmuls vs two fused ones (qkv 960, gate_up 3072), alternating
(docs/training.md, "Levers").

    .venv/bin/python bench/fused_projections.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import write_result  # noqa: E402

import torch  # noqa: E402

SEPARATE, FUSED = (576, 192, 192, 1536, 1536), (960, 3072)


def step_ms(rows: int, widths, iters: int = 50) -> float:
    x = torch.randn(rows, 576, dtype=torch.bfloat16, requires_grad=True)
    layers = [torch.nn.Linear(576, n, bias=False).to(torch.bfloat16) for n in widths]

    def once():
        sum(layer(x).sum() for layer in layers).backward()

    for _ in range(3):
        once()
    t = time.perf_counter()
    for _ in range(iters):
        once()
    return (time.perf_counter() - t) / iters * 1e3


def main() -> None:
    torch.manual_seed(0)
    runs = {}
    for rows in (512, 1024):
        runs[f"rows={rows}"] = [{"separate_ms": round(step_ms(rows, SEPARATE), 2),
                                 "fused_ms": round(step_ms(rows, FUSED), 2)} for _ in range(3)]
    write_result("fused_projections", {"dtype": "bfloat16", "threads": torch.get_num_threads(), "runs": runs})


if __name__ == "__main__":
    main()
