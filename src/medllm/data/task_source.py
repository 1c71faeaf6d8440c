"""A data source that names an evaluation task: the task's own files become SFT conversations.

This is the *supervised setting* (fine-tune on a benchmark's train split, then evaluate on its
test split): a recipe source ``{name: pubmedqa_train, path: pqal_cv500.jsonl, task: pubmedqa}``
is read by the eval task's loader (``medllm.eval.loaders``, so the file format, field mapping and
label checks are exactly those of evaluation) and every example becomes::

    system    = the task's generate.system           (what evaluation sends)
    user      = the task's generate.prompt, rendered for the example
    assistant = the gold answer as the task expects it to be generated (``eval.prompts.gold_text``)

so the model is trained on the very prompt it is later evaluated with in ``mode: generate``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

# Task types whose gold answer is a complete, well-defined generation: one label, a letter,
# a label list, a reference span/text, or the entity list the NER prompt asks for.
SFT_TASK_TYPES = ("mcq", "classification", "relation", "nli", "multilabel", "extractive_qa",
                  "summarization", "ner")
_WHY_NOT = {
    "diagnosis": "its prompt asks for a ranked differential of 5 diagnoses but the data holds only the gold "
                 "diagnosis, so there is no complete answer to train on",
}


class TaskSourceError(ValueError):
    pass


def task_problem(spec) -> str | None:
    """Why ``spec`` (a ``medllm.eval.spec.TaskSpec``) cannot be training data, or None."""
    if spec.type not in SFT_TASK_TYPES:
        why = _WHY_NOT.get(spec.type, "it has no single gold answer text")
        return (f"task '{spec.name}' (type {spec.type}) cannot be used as training data: {why} "
                f"(supported task types: {', '.join(SFT_TASK_TYPES)})")
    if spec.generate is None:
        return (f"task '{spec.name}' has no 'generate' prompt; training data is built from the task's "
                "generative prompt and gold answer")
    return None


def task_conversation(spec, ex: dict) -> list[dict]:
    """One eval example -> [system?, user, assistant] in canonical message form."""
    from medllm.eval.prompts import chat_messages, gold_text

    return chat_messages(spec, ex, []) + [{"role": "assistant", "content": gold_text(spec, ex)}]


def _files(path: Path) -> list[str]:
    if path.is_dir():
        return [str(f) for f in sorted(path.rglob("*")) if f.is_file() and not f.name.startswith(".")]
    return [str(path)]


def load_task_source(path: str | Path, task: str, *, name: str | None = None,
                     max_samples: int | None = None):
    """Read ``path`` with eval task ``task`` (built-in name or task YAML) -> ``Loaded`` of kind ``sft``.

    Errors (unknown task, unsupported task type, a bad record) raise ``TaskSourceError`` naming
    the source; record errors keep the eval loader's ``file:line: field 'x': ...`` text."""
    from datasets import Dataset

    from medllm.data.loader import Loaded, features_for
    from medllm.eval.loaders import TaskDataError, load_examples
    from medllm.eval.prompts import PromptError
    from medllm.eval.spec import TaskSpecError, load_spec

    label = f"data source '{name or Path(str(path)).stem}'"
    try:
        spec = load_spec(task)
    except TaskSpecError as exc:
        raise TaskSourceError(f"{label}: {exc}") from None
    why = task_problem(spec)
    if why:
        raise TaskSourceError(f"{label}: {why}")
    try:
        examples = load_examples(spec, None if spec.builtin_data else path, limit=max_samples)
        rows: list[dict[str, Any]] = [{"messages": task_conversation(spec, ex), "source": name or spec.name}
                                      for ex in examples]
    except (TaskDataError, PromptError) as exc:
        raise TaskSourceError(f"{label} (task {spec.name}): {exc}") from None
    files = [] if spec.builtin_data else _files(Path(path).expanduser())
    text = str(path)
    return Loaded("sft", Dataset.from_list(rows, features=features_for("sft")), [],
                  {text: f"task:{spec.name}"}, files)
