"""CPU stages sized to a memory budget: the micro-batch comes from ``medllm plan``'s estimate.

On a CPU the activations a step keeps for backward grow with micro-batch x sequence length
(the 135M model keeps ~1.7 MB per token under bf16 autocast with LoRA dropout, i.e. ~10 GB
for 8 x 768 tokens). Before a stage runs on a machine without CUDA, the largest divisor of
``batch_size`` whose estimate fits the budget becomes the micro-batch and ``grad_accum`` grows
by the same factor: the optimizer step sees the same samples and, with the loss normalised by
the step's target tokens (``train.fast_lm``), the same loss. Only when one sample per
micro-batch still does not fit is activation checkpointing switched on (it costs a forward).

That static choice assumes every row is ``max_seq_len`` long. Real SFT rows are mostly far
shorter (the bench's medalpaca rows: median 141 tokens, one of 120 at 1024), so a single
process instead keeps the configured batch and splits each batch, when it arrives, into
forwards whose (rows x width) the same estimate admits (``forward_fits``, applied by
``train.fast_lm``): short batches run whole (big matmuls, no accumulation overhead), the
one long batch runs in pieces, and the peak is the same bound as the static plan's.

The budget is the stage's ``cpu_memory_gb`` (default 6 GB of RSS, 0 = keep the recipe's
micro-batch), of which ``CPU_RUNTIME_GB`` is set aside for the Python / torch / tokenizer
process itself, which the plan does not count.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_CPU_BUDGET_GB = 6.0
CPU_RUNTIME_GB = 1.0   # RSS of the process after imports and data loading, before the model (measured ~0.8)


def _shape(base_model):
    from medllm.models.lineage import is_lineage, read_lineage
    from medllm.plan.shapes import read_shape

    spec = str(base_model)
    if is_lineage(base_model):
        spec = read_lineage(base_model)["base"]
    return read_shape(spec)


def estimate_gb(name: str, stage, shape) -> float:
    """The plan's CPU estimate for ``stage`` (fp32 weights, as CPU stages load them)."""
    from medllm.plan.estimate import Device, estimate_stage

    device = Device(name="CPU", peak_tflops=1.0, mfu=1.0, mem_gb=1e9, accelerator=False)
    return estimate_stage(name, stage, shape, dtype="float32", device=device, suggest=False).total_gb


def _divisors_desc(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


def fit_stage(name: str, stage, base_model, *, budget_gb: float | None = None, on_cuda: bool | None = None):
    """(stage, info): ``stage`` with micro-batch / grad_accum / checkpointing that fit the CPU
    budget (unchanged on CUDA, with a budget of 0, or when the model's shape is unknown), and
    what was decided, for the stage's metrics."""
    if on_cuda is None:
        import torch

        on_cuda = torch.cuda.is_available()
    budget = getattr(stage, "cpu_memory_gb", None) if budget_gb is None else budget_gb
    if budget is None:
        budget = DEFAULT_CPU_BUDGET_GB
    if on_cuda or not budget:
        return stage, {}
    try:
        shape = _shape(base_model)
    except Exception as exc:  # a model plan cannot read: train as configured  # noqa: BLE001
        log.debug("%s: no shape for %s (%s); micro-batch left as configured", name, base_model, exc)
        return stage, {}
    room = budget - CPU_RUNTIME_GB
    info = {"memory_budget_gb": budget, "batch_size_configured": stage.batch_size,
            "grad_accum_configured": stage.grad_accum}
    options = [False, True] if not stage.gradient_checkpointing else [True]
    chosen = None
    for ckpt in options:
        for mb in _divisors_desc(stage.batch_size):
            cand = stage.model_copy(update={"batch_size": mb, "grad_accum": stage.grad_accum * stage.batch_size // mb,
                                            "gradient_checkpointing": ckpt})
            gb = estimate_gb(name, cand, shape)
            if gb <= room:
                chosen = (cand, gb)
                break
        if chosen:
            break
    if chosen is None:   # even 1 sample with checkpointing is over: the smallest there is, said loudly
        cand = stage.model_copy(update={"batch_size": 1, "grad_accum": stage.grad_accum * stage.batch_size,
                                        "gradient_checkpointing": True})
        chosen = (cand, estimate_gb(name, cand, shape))
        log.warning("%s: estimated %.1f GB even at micro-batch 1 with activation checkpointing, over the "
                    "%.1f GB CPU budget (cpu_memory_gb); lower max_seq_len", name, chosen[1], budget)
    new, gb = chosen
    if (new.batch_size, new.gradient_checkpointing) != (stage.batch_size, stage.gradient_checkpointing):
        log.info("%s: micro-batch %d x grad_accum %d%s (was %d x %d) to stay within %.1f GB on CPU "
                 "(estimate %.1f GB + %.1f GB runtime)", name, new.batch_size, new.grad_accum,
                 " with activation checkpointing" if new.gradient_checkpointing and not stage.gradient_checkpointing
                 else "", stage.batch_size, stage.grad_accum, budget, gb, CPU_RUNTIME_GB)
    info.update(micro_batch=new.batch_size, grad_accum=new.grad_accum,
                gradient_checkpointing=new.gradient_checkpointing, plan_estimate_gb=round(gb + CPU_RUNTIME_GB, 3))
    return new, info


EAGER_SCORE_BYTES = 10   # per attention score kept by eager attention: bf16 scores, fp32 softmax, bf16 probs


def forward_fits(name: str, stage, base_model, budget_gb: float, eager_max_width: int = 0):
    """``fits(rows, width) -> bool``: whether one forward/backward of ``rows`` padded rows of
    ``width`` tokens stays within ``budget_gb`` by the same estimate ``fit_stage`` uses (with the
    stage's fitted activation checkpointing), plus the [heads x width x width] scores per row and
    layer that eager attention keeps where pieces up to ``eager_max_width`` run it
    (``train.fast_lm``); None when the model's shape is unknown."""
    from functools import lru_cache

    try:
        shape = _shape(base_model)
    except Exception:  # noqa: BLE001  (no shape: no splitting, the static plan stands)
        return None
    room = budget_gb - CPU_RUNTIME_GB

    @lru_cache(maxsize=4096)
    def fits(rows: int, width: int) -> bool:
        cand = stage.model_copy(update={"batch_size": max(1, int(rows)), "max_seq_len": max(1, int(width))})
        scores = 0.0
        if width <= eager_max_width:
            kept = 1 if stage.gradient_checkpointing else shape.layers
            scores = rows * shape.heads * width * width * EAGER_SCORE_BYTES * kept / 1e9
        return estimate_gb(name, cand, shape) + scores <= room

    return fits


# What one forward + backward adds to the between-steps RSS on the demo's SFT rows (~1.4 GB measured
# with 8-row micro-batches, SmolLM2-135M, docs/training.md): free heap above budget - STEP_RISE_GB is released.
STEP_RISE_GB = 1.5
# Released pages are faulted in again by the next steps: on the whole demo a trim after every step
# above the mark (81 of 184 steps) ran SFT at 294 tok/s against 331 untrimmed, so at most one trim per
# TRIM_MIN_STEPS optimizer steps.
TRIM_MIN_STEPS = 10


def resident_bytes() -> int | None:
    """The process's resident set now (Linux ``/proc/self/statm``), or None."""
    import os

    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def heap_trim_callback(budget_gb: float, plan: dict):
    """A TrainerCallback for CPU stages with a memory budget: after an optimizer step whose
    resident set is above ``budget_gb - STEP_RISE_GB``, free heap pages go back to the OS
    (``allocator.release_free_heap``). Why: every batch has its own activation sizes, the freed
    holes do not fit the next batch's tensors, and glibc keeps them resident, so the peak creeps up
    through a run (demo SFT, 184 steps: 4.8 GB at step 10, 5.9 GiB at 170). Trimming every step
    cost 0.83x in page faults, so at most one trim per ``TRIM_MIN_STEPS`` steps (docs/training.md).
    Counts its trims in ``plan["heap_trims"]`` (the stage's metrics)."""
    from transformers import TrainerCallback

    from medllm.allocator import release_free_heap

    mark = (budget_gb - STEP_RISE_GB) * 1e9
    plan["heap_trims"] = 0

    class HeapTrim(TrainerCallback):
        since = TRIM_MIN_STEPS

        def on_step_end(self, args, state, control, **kwargs):
            self.since += 1
            if self.since < TRIM_MIN_STEPS:
                return
            rss = resident_bytes()
            if rss is not None and rss > mark and release_free_heap():
                plan["heap_trims"] += 1
                self.since = 0

    return HeapTrim()


__all__ = ["CPU_RUNTIME_GB", "DEFAULT_CPU_BUDGET_GB", "STEP_RISE_GB", "estimate_gb", "fit_stage", "forward_fits",
           "heap_trim_callback", "resident_bytes"]
