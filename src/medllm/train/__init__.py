"""Training stages (pretrain, sft, reward, rejection_sampling, dpo) over transformers/TRL/PEFT.

Public entry point: ``run_stage(name, stage, *, recipe, run, base_model, datasets, reward_model)``.
Nothing heavy is imported until a stage runs."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medllm.train.stage import StageResult


def run_stage(name, stage, **kwargs) -> "StageResult":
    from medllm.train.stage import run_stage as _run

    return _run(name, stage, **kwargs)


def __getattr__(attr):
    if attr == "StageResult":
        from medllm.train.stage import StageResult

        return StageResult
    raise AttributeError(attr)


__all__ = ["run_stage", "StageResult"]
