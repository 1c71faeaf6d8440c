"""Run folders: one folder per run holding the resolved recipe, provenance and per-stage state."""
from medllm.runs.folder import RunFolder, list_runs, load_run_summary

__all__ = ["RunFolder", "list_runs", "load_run_summary"]
