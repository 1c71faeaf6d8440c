"""Tasks declared as data: one small YAML file per task, validated by ``TaskSpec``.

A user adds a task without code by writing a YAML like the built-ins in
``medllm/eval/tasks/`` and passing its path as ``task:`` (or ``medllm eval run --task FILE``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

TASK_TYPES = ("mcq", "extractive_qa", "ner", "relation", "classification", "multilabel",
              "summarization", "nli", "diagnosis", "fact_qa")
BUILTIN_DIR = Path(__file__).parent / "tasks"


class TaskSpecError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoglikPrompt(_Strict):
    """lm-eval-compatible multiple-choice scoring: score ``continuation`` after ``prompt``."""
    description: str = ""          # prepended once, before the few-shot exemplars
    prompt: str                    # str.format over the example's fields (+ {letters} {options} {subject})
    continuation: str = " {choice}"  # what is scored; {choice} = choice text, {letter} = A/B/...
    fewshot_separator: str = "\n\n"


class GeneratePrompt(_Strict):
    """Me-LLaMA-style instruction prompt, sent through the model's chat template."""
    system: str = "You are a careful medical assistant."
    prompt: str
    max_new_tokens: int | None = None


class TaskSpec(_Strict):
    name: str
    type: Literal[TASK_TYPES]  # type: ignore[valid-type]
    format: str = "jsonl"
    """Reader in ``medllm.eval.loaders.READERS`` (jsonl, json, csv, pubmedqa, mmlu_csv, medqa, medmcqa,
    squad, conll, brat)."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Canonical field -> column in the file (for the generic jsonl/json/csv readers)."""
    labels: list[str] | None = None
    """Closed label set (pubmedqa yes/no/maybe, NLI, relation, classification); also the choices."""
    label_map: dict[str, str] = Field(default_factory=dict)
    """Raw label in the file -> label in ``labels`` (e.g. 0/1/2 -> entailment/...)."""
    loglik: LoglikPrompt | None = None
    generate: GeneratePrompt | None = None
    metrics: list[str] = Field(default_factory=list)
    default_path: str | None = None
    """Where the public file usually lives, relative to the shared data folder (documentation + default)."""
    fewshot_path: str | None = None
    data_doc: str = ""
    builtin_data: str | None = None
    """Name of built-in data (``demo/mcq``): no file needed."""

    def modes(self) -> list[str]:
        return [m for m in ("loglik", "generate") if getattr(self, m) is not None]


def _load_yaml_spec(path: Path) -> TaskSpec:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise TaskSpecError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise TaskSpecError(f"{path}: a task file must be a mapping")
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: field '{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors()]
        raise TaskSpecError("\n".join(lines)) from None
    if spec.type == "mcq" and spec.labels is None and spec.loglik and "{choice}" not in spec.loglik.continuation \
            and "{letter}" not in spec.loglik.continuation:
        raise TaskSpecError(f"{path}: field 'loglik.continuation' must contain {{choice}} or {{letter}}")
    if not spec.modes():
        raise TaskSpecError(f"{path}: a task needs a 'loglik' or a 'generate' prompt (or both)")
    return spec


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_spec(task: str | Path) -> TaskSpec:
    """A built-in task name or a path to a task YAML."""
    p = Path(str(task)).expanduser()
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise TaskSpecError(f"task file not found: {p}")
        return _load_yaml_spec(p)
    builtin = BUILTIN_DIR / f"{task}.yaml"
    if builtin.is_file():
        return _load_yaml_spec(builtin)
    raise TaskSpecError(f"unknown task '{task}'; built-in tasks: {', '.join(builtin_names())} "
                        f"(or give a task YAML file)")
