"""Load a recipe from YAML + ``key=value`` overrides and report every problem at once.

Two passes, both always run: pydantic validates types/values/unknown keys for the whole
tree (it collects all errors rather than stopping at the first), then semantic checks
(missing files, dangling references, incompatible settings) walk the raw mapping, so
they work even when pass 1 failed. Nothing here loads a model.
"""
from __future__ import annotations

import copy
import difflib
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from medllm.config.recipe import Recipe
from medllm.config.train import STAGE_TYPES

# Names people carry over from other tools -> ours.
ALIASES = {
    "learning_rate": "lr", "num_train_epochs": "epochs", "num_epochs": "epochs",
    "per_device_train_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum",
    "max_length": "max_seq_len", "cutoff_len": "max_seq_len", "lora_rank": "r", "lora_alpha": "alpha",
    "lora_dropout": "dropout", "lora_target": "target_modules", "model_name_or_path": "name",
    "dataset": "data", "finetuning_type": "method", "pref_beta": "beta",
}


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class RecipeError(ValueError):
    def __init__(self, problems: list[Problem], source: str = "recipe"):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


# ---------------------------------------------------------------- YAML + overrides
def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RecipeError([Problem(str(path), "recipe file not found")])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise RecipeError([Problem(where, f"invalid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError([Problem(str(path), "a recipe must be a mapping at top level")])
    return data


def parse_value(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


def apply_overrides(data: dict, overrides: list[str]) -> tuple[dict, list[Problem]]:
    data = copy.deepcopy(data)
    problems = []
    for item in overrides:
        if "=" not in item:
            problems.append(Problem(item, "override must look like key.path=value"))
            continue
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = data
        ok = True
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    problems.append(Problem(key, f"'{part}' is not a valid index into {'.'.join(parts[:i])}"))
                    ok = False
                    break
                node = node[int(part)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                problems.append(Problem(key, f"'{'.'.join(parts[:i])}' is not a mapping"))
                ok = False
                break
        if not ok:
            continue
        last = parts[-1]
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = parse_value(raw)
        elif isinstance(node, dict):
            node[last] = parse_value(raw)
        else:
            problems.append(Problem(key, "cannot set a value here"))
    return data, problems


def _fill_stage_types(data: dict) -> None:
    stages = data.get("stages")
    if isinstance(stages, dict):
        for name, stage in stages.items():
            if isinstance(stage, dict) and "type" not in stage and name in STAGE_TYPES:
                stage["type"] = name


# ---------------------------------------------------------------- pydantic pass
def _unwrap(tp: Any) -> list[Any]:
    """All candidate classes behind Optional/Union/list/dict/Annotated."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out = []
        for a in typing.get_args(tp):
            out.extend(_unwrap(a))
        return out
    return [tp]


def _allowed_keys(loc: tuple, data: Any) -> list[str]:
    """Field names valid at the mapping that ``loc`` points into (for suggestions)."""
    current: list[Any] = [Recipe]
    node = data
    i = 0
    while i < len(loc):
        part = loc[i]
        nxt: list[Any] = []
        for tp in current:
            origin = typing.get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if isinstance(part, str) and part in tp.model_fields:
                    nxt.extend(_unwrap(tp.model_fields[part].annotation))
                elif isinstance(node, dict) and node.get("type") == part:  # discriminator tag in loc
                    nxt.append(tp)
            elif origin in (list, dict):
                nxt.extend(_unwrap(typing.get_args(tp)[-1]))
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        # a union of stage classes: keep the one the raw data names
        models = [t for t in nxt if isinstance(t, type) and issubclass(t, BaseModel)]
        if isinstance(node, dict) and "type" in node and len(models) > 1:
            models = [m for m in models if "type" in m.model_fields
                      and node["type"] in typing.get_args(m.model_fields["type"].annotation)] or models
            nxt = models + [t for t in nxt if t not in models and not (isinstance(t, type) and issubclass(t, BaseModel))]
        current = nxt or current
        i += 1
    keys: list[str] = []
    for tp in current:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            keys.extend(tp.model_fields)
    return sorted(set(keys))


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _suggest(bad: str, allowed: list[str]) -> str:
    if bad in ALIASES and ALIASES[bad] in allowed:
        return f" (did you mean '{ALIASES[bad]}'?)"
    close = difflib.get_close_matches(bad, allowed, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else (f" (valid keys: {', '.join(allowed)})" if allowed else "")


def _strip_tags(loc: tuple, data: Any) -> tuple:
    """Drop pydantic's discriminator tag from a loc: stages.sft.sft.lr -> stages.sft.lr."""
    out = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def pydantic_problems(exc: ValidationError, data: dict) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = _strip_tags(tuple(err["loc"]), data)
        if err["type"] == "extra_forbidden":
            bad = str(loc[-1])
            allowed = _allowed_keys(loc[:-1], data)
            problems.append(Problem(_where(loc), f"unknown key '{bad}'{_suggest(bad, allowed)}"))
        elif err["type"] == "union_tag_invalid":
            problems.append(Problem(_where(loc), f"unknown stage type {err['input'].get('type')!r} "
                                                 f"(valid: {', '.join(STAGE_TYPES)})"))
        elif err["type"] == "union_tag_not_found":
            problems.append(Problem(_where(loc), f"stage needs a 'type' ({', '.join(STAGE_TYPES)}) "
                                                 "unless its name is one of them"))
        else:
            msg = err["msg"].removeprefix("Value error, ")
            given = err.get("input")
            if err["type"] not in ("missing",) and not isinstance(given, (dict, list)):
                msg += f" (got {given!r})"
            problems.append(Problem(_where(loc), msg))
    return problems


# ---------------------------------------------------------------- entry points
def expand_path(text: str) -> Path:
    return Path(os.path.expandvars(text)).expanduser()


def load_recipe_dict(path: str | Path | None, overrides: list[str] | None = None,
                     data: dict | None = None) -> tuple[dict, list[Problem]]:
    raw = read_yaml(path) if path is not None else copy.deepcopy(data or {})
    raw, problems = apply_overrides(raw, overrides or [])
    _fill_stage_types(raw)
    return raw, problems


def check_recipe(path: str | Path | None = None, overrides: list[str] | None = None, *,
                 data: dict | None = None, check_files: bool = True) -> tuple[Recipe | None, list[Problem]]:
    """Validate without raising: ``(recipe or None, problems)``."""
    from medllm.config.checks import semantic_problems

    raw, problems = load_recipe_dict(path, overrides, data)
    recipe = None
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, raw))
    problems.extend(semantic_problems(raw, check_files=check_files))
    return (recipe if not problems else None), problems


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None, *,
                data: dict | None = None, check_files: bool = True) -> Recipe:
    recipe, problems = check_recipe(path, overrides, data=data, check_files=check_files)
    if problems:
        raise RecipeError(problems, str(path) if path else "recipe")
    return recipe
