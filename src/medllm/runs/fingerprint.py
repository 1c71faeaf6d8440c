"""Step fingerprints: what determines each pipeline step's output, hashed.

A step's fingerprint is built from
* its resolved recipe section (``data:``, ``stages.<name>:`` + ``model:`` + seed, ``eval:``),
* the sha256 of the files it reads (data sources, decontamination lists, eval task files),
  and a cheap stat-fingerprint of the base model folder,
* the fingerprints of the steps it consumes (a stage: the data step, the previous policy
  stage, the reward stage it is scored by; eval: every evaluated model),
* the sha256 of the medllm source files that compute it (``medllm.train`` for stages …),
* for eval, anything registered with :func:`register_eval_part` (a judge model's identity…).

Upstream fingerprints are part of a step's own, so a change anywhere flows downstream like
make: changing the SFT learning rate changes ``sft``, then ``dpo``, ``eval`` and ``examples``.
The parts are stored next to the hash (``state.json``) so a mismatch can be explained.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Callable

from medllm.runs.provenance import hash_inputs

SRC = Path(__file__).resolve().parents[1]          # src/medllm
# the medllm code whose behaviour a step's output depends on (not the CLI, serving, docs)
CODE_AREAS = {
    "data": ("data", "io.py", "runs/fingerprint.py"),
    "stage": ("train", "models", "config/train.py"),
    "eval": ("eval", "models"),
    "examples": ("models", "pipeline/runner.py"),
}
_EVAL_PARTS: list[Callable] = []


def register_eval_part(fn: Callable) -> Callable:
    """Hook: ``fn(recipe) -> dict`` whose JSON joins the eval step's fingerprint (for eval
    settings outside ``recipe.eval``, e.g. the identity of a judge model's weights)."""
    _EVAL_PARTS.append(fn)
    return fn


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def code_hash(area: str) -> str:
    h = hashlib.sha256()
    for rel in CODE_AREAS[area]:
        p = SRC / rel
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(SRC)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def model_stat(name: str) -> dict:
    """The base model as a name plus the size and mtime of its top-level files: cheap (no
    hashing of 16 GB at every start) yet changes when the weights are replaced."""
    try:
        from medllm.models import ensure_local

        folder = Path(ensure_local(name))
    except Exception as exc:  # training will fail with the real error; the fingerprint just records it
        return {"name": name, "unresolved": str(exc)[:200]}
    if folder.is_file():
        st = folder.stat()
        return {"name": name, "file": [st.st_size, st.st_mtime_ns]}
    return {"name": name, "files": {f.name: [f.stat().st_size, f.stat().st_mtime_ns]
                                    for f in sorted(folder.iterdir()) if f.is_file()}}


def _fp(recipe_part, inputs=None, upstream=None, code=None, extra=None) -> dict:
    parts = {"recipe": recipe_part, "inputs": inputs or {}, "upstream": upstream or {},
             "code": code or {}, "extra": extra or {}}
    return {"hash": _digest(parts), "parts": parts}


def step_fingerprints(recipe, *, eval_labels: Callable[[list[str]], list[str]] | None = None,
                      example_prompts: list[str] = ()) -> dict[str, dict]:
    """Fingerprint of every step of ``recipe`` except the report (always rebuilt), in order.

    ``eval_labels(labels)`` picks which models eval scores (the runner's rule), from the
    ``base`` + policy-stage labels; ``example_prompts`` are what the examples step answers."""
    dump = recipe.model_dump(mode="json")
    out: dict[str, dict] = {}
    data = dump["data"]
    data_files = [s["path"] for s in data["sources"]] + list((data.get("clean") or {}).get("decontaminate") or [])
    tok = {"tokenizer": dump["model"]["name"]} if (data.get("mix") or {}).get("by") == "tokens" else {}
    out["data"] = _fp({"data": data, "seed": dump["seed"], **tok}, inputs=hash_inputs(data_files),
                      code={"data": code_hash("data")})
    models = {"base": _digest({"model": dump["model"], "stat": model_stat(recipe.model.name)})}
    current, reward = "base", None
    for name, stage in recipe.stages.items():
        upstream = {"data": out["data"]["hash"], current: models[current]}
        if reward:
            upstream[reward] = out[reward]["hash"]
        out[name] = _fp({f"stages.{name}": dump["stages"][name], "model": dump["model"], "seed": dump["seed"]},
                        inputs={"base_model": model_stat(recipe.model.name)} if current == "base" else {},
                        upstream=upstream, code={"stage": code_hash("stage")})
        if stage.type == "reward":
            reward = name
        else:
            current = name
            models[name] = out[name]["hash"]
    labels = list(models)
    picked = eval_labels(labels) if eval_labels else labels
    task_files = [t["path"] for t in dump["eval"]["tasks"] if t.get("path")]
    out["eval"] = _fp({"eval": dump["eval"]}, inputs=hash_inputs(task_files),
                      upstream={lb: models[lb] for lb in picked}, code={"eval": code_hash("eval")},
                      extra={f"{getattr(fn, '__name__', 'part')}": fn(recipe) for fn in _EVAL_PARTS})
    ex_models = [labels[0], labels[-1]] if len(labels) > 1 else labels
    out["examples"] = _fp({"prompts": list(example_prompts), "eval.max_new_tokens": dump["eval"]["max_new_tokens"]},
                          # the report's examples may be the eval step's own free-answer predictions
                          upstream={**{lb: models[lb] for lb in ex_models}, "eval": out["eval"]["hash"]},
                          code={"examples": code_hash("examples")})
    return out


# ---------------------------------------------------------------- explaining a mismatch
def _flat(obj, prefix=""):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):  # eval.tasks.0.limit
        out = {}
        for i, v in enumerate(obj):
            out.update(_flat(v, f"{prefix}.{i}"))
        return out
    return {prefix: obj}


def _short(v) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def explain(old: dict | None, new: dict) -> list[str]:
    """Human-readable reasons why two fingerprints differ (empty when equal)."""
    if old is None:
        return ["recorded without a fingerprint (older medllm): cannot tell whether it is current"]
    if old.get("hash") == new["hash"]:
        return []
    o, n = old.get("parts") or {}, new["parts"]
    reasons = []
    fo, fn = _flat(o.get("recipe") or {}), _flat(n["recipe"])
    for key in sorted(set(fo) | set(fn)):
        if fo.get(key) != fn.get(key):
            reasons.append(f"recipe {key}: {_short(fo.get(key))} -> {_short(fn.get(key))}")
    oi, ni = o.get("inputs") or {}, n["inputs"]
    for path in sorted(set(oi) | set(ni)):
        if oi.get(path) != ni.get(path):
            what = "added" if path not in oi else "removed" if path not in ni else "content changed"
            reasons.append(f"input {path}: {what}")
    ou, nu = o.get("upstream") or {}, n["upstream"]
    for step in sorted(set(ou) | set(nu), key=lambda s: list(nu).index(s) if s in nu else 99):
        if ou.get(step) != nu.get(step):
            reasons.append(f"consumes {step}, which changed" if step in ou and step in nu
                           else f"now consumes {step}" if step in nu else f"no longer consumes {step}")
    for area in sorted(set(o.get("code") or {}) | set(n["code"])):
        if (o.get("code") or {}).get(area) != n["code"].get(area):
            reasons.append(f"medllm code of the '{area}' step changed")
    if (o.get("extra") or {}) != n["extra"]:
        reasons.append("eval settings outside the recipe changed")
    return reasons or ["fingerprint changed"]
