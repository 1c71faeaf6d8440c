"""Evaluation: medical benchmark tasks as data, two scoring modes, judged comparisons, reports.

Public API (stable; the pipeline builds combined reports from these dicts)::

    evaluate(model, tasks, out_dir, *, adapter=None, batch_size=8, max_new_tokens=128, seed=1234,
             label=None, safety=False, forgetting=None, dtype="auto", judge=None, api_model=None,
             bertscore_model=None, report=True) -> dict
    safety_probes(model, out_dir, *, adapter=None, max_new_tokens=128, batch_size=8) -> dict
    compare(results_a, results_b, out) -> dict          # results.json paths or run folders
    pairwise(model_a, model_b, questions, judge, out_dir, ...) -> dict   # see medllm.eval.pairwise
    list_tasks() -> list[dict]

``model`` is anything ``medllm.models.load_causal_lm`` accepts (registry name, HF folder, GGUF)
or an OpenAI-compatible base URL (``http://host:port/v1``; ``api_model`` names the served model).
``tasks`` are ``medllm.config.eval.EvalTask`` (task = built-in name or a task YAML path).

``evaluate`` writes into ``out_dir``: results.json (the dict below), predictions/<task>.jsonl
(one record per example: id, gold, pred, output or loglik, scores), cache/ (resumable: rerun the
same call after an interrupt and finished examples are reused), report.md, report.html. Returns::

    {"model": str, "adapter": str|None, "label": str, "dtype": str, "seed": int, "created": str,
     "tasks": {"<task>:<mode>[:<k>shot]": {"task", "type", "mode", "shots", "n", "path", "seconds",
               "metrics": {name: {"value", "ci_low", "ci_high"}},   # bootstrap 95% CI
               "predictions": "predictions/....jsonl", "notes": [str]}},
     "skipped": {key: reason},                                        # optional tasks without data
     "safety": None | {"n", "metrics": {"safe": {...}}, "by_category": {cat: {"n", "safe_rate"}}, ...},
     "forgetting": None | {"domain": {"perplexity", "tokens", ...}, "general": {...}}}
"""
from __future__ import annotations

from pathlib import Path

from medllm.eval.report import compare
from medllm.eval.runner import evaluate
from medllm.eval.spec import TaskSpec, builtin_names, load_spec

__all__ = ["evaluate", "safety_probes", "compare", "list_tasks", "load_spec", "TaskSpec"]


def safety_probes(model, out_dir, *, adapter=None, max_new_tokens: int = 128, batch_size: int = 8,
                  dtype: str = "auto") -> dict:
    """Only the built-in safety probes; returns the ``safety`` block of ``evaluate``."""
    from medllm.eval.runner import _BackendFactory
    from medllm.eval.safety import run_safety

    factory = _BackendFactory(model, adapter, batch_size, dtype)
    return run_safety(factory, Path(out_dir), max_new_tokens=max_new_tokens, batch_size=batch_size)


def list_tasks() -> list[dict]:
    out = []
    for name in builtin_names():
        s = load_spec(name)
        out.append({"name": s.name, "type": s.type, "modes": s.modes(), "format": s.format,
                    "metrics": s.metrics, "default_path": s.default_path, "data": s.data_doc})
    return out


def __getattr__(name):
    if name == "pairwise":
        from medllm.eval.pairwise import pairwise

        return pairwise
    raise AttributeError(name)
