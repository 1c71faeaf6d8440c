"""The Launch form's back end: the recipe's JSON schema (generated from the pydantic models,
the one source of truth), validation with exactly ``medllm validate``'s problems, YAML
load/save, and the ``medllm run`` command equivalent to an edited recipe."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from medllm.config.loader import RecipeError, check_recipe, read_yaml


def recipe_schema() -> dict:
    from medllm.config.recipe import Recipe

    return Recipe.model_json_schema()


def validate(data: dict, *, check_files: bool = True) -> list[dict]:
    """``[{where, message, text}]`` — ``text`` is the line ``medllm validate`` prints (without "  - ")."""
    try:
        _, problems = check_recipe(data=data, check_files=check_files)
    except RecipeError as exc:
        problems = exc.problems
    return [{"where": p.where, "message": p.message, "text": str(p)} for p in problems]


def load_yaml(path: Path) -> dict:
    data = read_yaml(path)   # RecipeError (file:line:col) for a missing or broken file
    return {"path": str(path), "data": data, "yaml": path.read_text(encoding="utf-8")}


def dump_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def save_yaml(path: Path, data: dict) -> str:
    from medllm.io import atomic_write_text

    text = dump_yaml(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return text


# ---------------------------------------------------------------- overrides
class NotExpressible(Exception):
    """The edit removed a key or changed a list's length: no ``key=value`` override says that."""


def _flat(node: Any, prefix: str, out: dict) -> None:
    if isinstance(node, dict) and node:
        for k, v in node.items():
            _flat(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = node


def overrides_between(original: dict, edited: dict) -> list[str]:
    """``key.path=value`` items that turn ``original`` into ``edited`` (as ``medllm run`` applies them)."""
    out: list[str] = []
    _diff(original, edited, "", out)
    return out


def _value(v: Any) -> str:
    if isinstance(v, str):
        # what parse_value reads back as this same string
        from medllm.config.loader import parse_value

        return v if parse_value(v) == v and v.strip() == v and v else json.dumps(v)
    return json.dumps(v)


def _diff(a: Any, b: Any, prefix: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k not in b:
                raise NotExpressible(f"{prefix}.{k}" if prefix else k)
        for k, v in b.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if k in a:
                _diff(a[k], v, key, out)
            elif isinstance(v, dict) and v:
                _diff({}, v, key, out)
            else:
                out.append(f"{key}={_value(v)}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise NotExpressible(prefix)
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{prefix}.{i}", out)
    elif a != b or type(a) is not type(b):
        if isinstance(b, (dict, list)) and isinstance(a, (dict, list)):
            raise NotExpressible(prefix)
        out.append(f"{prefix}={_value(b)}")


def run_argv(edited: dict, *, source: Path | None, original: dict | None, save_to: Path,
             runs_dir: Path, name: str) -> tuple[list[str], Path | None]:
    """The ``medllm run`` argv for an edited recipe: the loaded file plus overrides when the edit
    can be said that way (so the command is the one a user would type), else a saved copy.
    Returns (argv, file written or None)."""
    from medllm.config.loader import apply_overrides

    tail = ["--root", str(runs_dir), "--name", name]
    if source is not None and original is not None:
        try:
            items = overrides_between(original, edited)
            # proof the overrides give back exactly the edited recipe
            again, problems = apply_overrides(original, items)
            if not problems and again == edited:
                return ["run", str(source), *items, *tail], None
        except NotExpressible:
            pass
    save_yaml(save_to, edited)
    return ["run", str(save_to), *tail], save_to
