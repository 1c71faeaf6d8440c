"""The CPU's matmul rate at SmolLM2-135M's decoder shapes, fp32 and bf16: the ceiling that
training and evaluation throughput are compared against (docs/training.md, docs/evaluation.md).

    .venv/bin/python bench/matmul_rate.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import write_result  # noqa: E402

import torch  # noqa: E402

SHAPES = {"576x1536 (q/gate/up)": (576, 1536), "1536x576 (down)": (1536, 576), "576x576 (q/o)": (576, 576)}


def rate(rows: int, k: int, n: int, dtype, iters: int = 30) -> float:
    a, b = torch.randn(rows, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(iters):
        a @ b
    return 2 * rows * k * n / ((time.perf_counter() - t) / iters) / 1e9


def main() -> None:
    torch.manual_seed(0)
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        for rows in (512, 2800):   # a demo SFT micro-batch (~8 x 60 tokens); a PubMedQA eval batch (8 x 350)
            out[f"{str(dtype).replace('torch.', '')} rows={rows}"] = {
                name: round(rate(rows, k, n, dtype), 1) for name, (k, n) in SHAPES.items()}
    write_result("matmul_rate", {"unit": "GFLOP/s", "threads": torch.get_num_threads(), "rates": out})


if __name__ == "__main__":
    main()
