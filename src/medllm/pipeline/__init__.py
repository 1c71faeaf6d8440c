"""`medllm run RECIPE`: data -> training stages -> evaluation -> report, resumable."""
from medllm.pipeline.runner import run_recipe

__all__ = ["run_recipe"]
