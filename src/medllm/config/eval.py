"""The ``eval:`` section."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from medllm.config.base import Section


class EvalTask(Section):
    task: str
    """Built-in task name (pubmedqa, medqa, medmcqa, mmlu_medical, demo_mcq, ...) or a task YAML file."""
    path: str | None = None
    mode: Literal["loglik", "generate"] = "loglik"
    shots: int = Field(default=0, ge=0)
    limit: int | None = Field(default=None, gt=0)
    sample: Literal["first", "random"] = "first"
    """With ``limit``: the first N examples (lm-eval's ``--limit``) or a seeded random N (in file
    order). Public files are often sorted by label (PubMedQA's test file lists all 'yes' first),
    so a first-N slice of them measures one class only."""
    optional: bool = False
    """Skip silently (with a note in the report) when ``path`` is absent."""
    models: Literal["all", "base_and_final"] = "all"
    """Which of the models ``eval.models`` picks run this task: ``base_and_final`` skips the
    intermediate stages (a general-ability check that only needs the two ends costs half)."""


class EvalConfig(Section):
    tasks: list[EvalTask] = Field(default_factory=list)
    models: Literal["final", "base_and_final", "every_stage"] = "every_stage"
    safety_probes: bool = True
    forgetting: bool = False
    batch_size: int = Field(default=8, gt=0)
    generate_batch_size: int | None = Field(default=None, gt=0)
    """Rows per generation batch (generate-mode tasks, safety probes); unset = ``batch_size``. Lets
    generation batch wider than loglik scoring, whose multi-token choices run fastest in small
    batches on CPU (docs/evaluation.md); on a GPU wide generation batches are what fill it."""
    max_new_tokens: int = Field(default=128, gt=0)
    seed: int = 1234
    judge: str | None = None
    """Judge model for the diagnosis task (and the safety rubric when ``safety_judge``): a
    registry name, a local model folder or an OpenAI-compatible URL. Unset: the offline
    whole-name matcher / rubric rules."""
    safety_judge: bool = False
    """Also ask ``judge`` whether each safety answer meets its probe's rubric (rules still reported)."""
