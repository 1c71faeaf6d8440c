"""TRL's fused log-prob head, made to score only labelled positions on CPU as it does on GPUs.

TRL's preference trainers (DPO and relatives) compute per-token log-probabilities through a fused
LM head (``trl.trainer.utils.add_fused_lm_head``). On devices with Triton it projects only the
positions that have a label; elsewhere it projects *every* position (prompt and padding too), so
that a graph compiler (Neuron) sees one tile shape per batch. Eager CPU has no such compiler, and
the extra positions cost: on the demo's DPO stage (6 steps, 8 pairs of ~60-105 tokens) every
prompt and padding position goes through the 49K-wide head, its log-softmax, entropy and top-1
(2026-12-07, 2-core AMD EPYC: 46.5 s -> 30.5 s, same loss 0.66305, peak
-0.63 GB; docs/training.md).

``score_labelled_positions_only_on_cpu`` changes that one decision, and nothing else: the name it
replaces is the one ``add_fused_lm_head`` reads, not the kernel module's own (which picks the
Triton kernels). If TRL renames it, nothing is patched and training runs as TRL ships it.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def score_labelled_positions_only_on_cpu() -> bool:
    """Patch TRL (idempotent). True when TRL's fused head now compacts on CPU too."""
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None or not callable(original):
        log.debug("trl.trainer.utils._use_triton not found: TRL scores every position on CPU")
        return False
    if getattr(original, "_medllm_cpu_compact", False):
        return True

    def compact(device) -> bool:
        return getattr(device, "type", None) == "cpu" or original(device)

    compact._medllm_cpu_compact = True
    trl_utils._use_triton = compact
    return True
