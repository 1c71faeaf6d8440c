"""``medllm plan``: memory, disk and time of each stage of a recipe, before anything loads."""
from medllm.plan.estimate import (Device, ModelShape, PlanError, Sharding, StageEstimate, estimate_recipe,
                                  estimate_stage, memory, read_shape, read_sharding)

__all__ = ["Device", "ModelShape", "PlanError", "Sharding", "StageEstimate", "estimate_recipe", "estimate_stage",
           "memory", "read_shape", "read_sharding"]
