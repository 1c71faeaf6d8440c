"""Run a whole recipe: data -> each training stage (merged between stages) -> eval -> report.

Each step is recorded in ``state.json``; a step already ``done`` is skipped, so re-running
the same command continues an interrupted run. ``from_stage`` forgets a step and all
later ones. Every step works on files in the run folder, so a fresh process can pick up.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from medllm.runs import RunFolder

log = logging.getLogger(__name__)


def step_order(recipe) -> list[str]:
    return ["data", *recipe.stages, "eval", "examples", "report"]


def run_recipe(recipe_path: str | Path | None, overrides: list[str] | None = None, *,
               recipe=None, from_stage: str | None = None, root: str | Path | None = None,
               name: str | None = None) -> RunFolder:
    from medllm.config.loader import load_recipe

    recipe = recipe or load_recipe(recipe_path, overrides or [])
    run = RunFolder.create(recipe, root=root, name=name, recipe_path=recipe_path)
    order = step_order(recipe)
    if from_stage:
        if from_stage not in order:
            raise ValueError(f"--from {from_stage!r}: not a step of this recipe ({', '.join(order)})")
        run.reset_from(from_stage, order)
    t0 = time.time()
    datasets = _data_step(recipe, run)
    models = _training_steps(recipe, run, datasets)
    _eval_step(recipe, run, models)
    _examples_step(recipe, run, models)
    _report_step(recipe, run)
    log.info("run %s finished in %.0f s: %s", recipe.name, time.time() - t0, run.path / "report.html")
    return run


# ------------------------------------------------------------------ data
def _data_step(recipe, run: RunFolder) -> dict:
    from datasets import load_from_disk

    from medllm.data.prepare import prepare_data

    out = run.stage_dir("data") / "datasets"
    if run.is_done("data"):
        names = run.stage_state("data").get("datasets", [])
        return {n: load_from_disk(str(out / n)) for n in names}
    run.mark("data", "running")
    datasets = prepare_data(recipe, run)
    for n, ds in datasets.items():
        ds.save_to_disk(str(out / n))  # resume reads these, so stages see the same data
    run.mark("data", "done", datasets=list(datasets), rows={n: len(d) for n, d in datasets.items()})
    return datasets


# ------------------------------------------------------------------ training
def _training_steps(recipe, run: RunFolder, datasets: dict) -> dict[str, Path]:
    """Returns label -> model folder for evaluation: ``base`` and each policy stage."""
    from medllm.models import ensure_local
    from medllm.train import run_stage

    base = ensure_local(recipe.model.name)
    models: dict[str, Path] = {"base": base}
    current, reward_model = base, None
    for name, stage in recipe.stages.items():
        if run.is_done(name):
            result_dir = Path(run.stage_state(name)["model_dir"])
        else:
            run.mark(name, "running", base_model=str(current))
            try:
                res = run_stage(name, stage, recipe=recipe, run=run, base_model=current,
                                datasets=datasets, reward_model=reward_model)
            except BaseException as exc:
                run.mark(name, "failed", error=f"{type(exc).__name__}: {exc}")
                raise
            result_dir = Path(res.model_dir)
            run.mark(name, "done", model_dir=str(result_dir),
                     adapter_dir=str(res.adapter_dir) if res.adapter_dir else None, metrics=res.metrics)
        if stage.type == "reward":
            reward_model = result_dir        # scores later stages; the policy is unchanged
        else:
            current = result_dir
            models[name] = result_dir
    return models


# ------------------------------------------------------------------ evaluation
def _eval_labels(recipe, models: dict[str, Path]) -> list[str]:
    labels = list(models)
    if recipe.eval.models == "final":
        return labels[-1:]
    if recipe.eval.models == "base_and_final":
        return [labels[0], labels[-1]] if len(labels) > 1 else labels
    return labels


def _eval_step(recipe, run: RunFolder, models: dict[str, Path]) -> None:
    from medllm.eval import evaluate

    if run.is_done("eval") or not (recipe.eval.tasks or recipe.eval.safety_probes):
        return
    run.mark("eval", "running")
    labels = _eval_labels(recipe, models)
    done = {}
    for label in labels:
        out = run.stage_dir("eval") / label
        # safety probes generate text (slow on CPU): the base and the final model suffice
        safety = recipe.eval.safety_probes and label in (labels[0], labels[-1])
        evaluate(models[label], recipe.eval.tasks, out, batch_size=recipe.eval.batch_size,
                 max_new_tokens=recipe.eval.max_new_tokens, seed=recipe.eval.seed, label=label,
                 safety=safety, judge=recipe.eval.judge, safety_judge=recipe.eval.safety_judge)
        done[label] = str(out / "results.json")
    run.mark("eval", "done", results=done)


# ------------------------------------------------------------------ examples, report
EXAMPLE_PROMPTS = [
    "What is the first-line treatment for uncomplicated type 2 diabetes?",
    "A 60-year-old has crushing chest pain and is sweating. What should he do?",
    "What is a major adverse effect of ACE inhibitors?",
]


def _examples_step(recipe, run: RunFolder, models: dict[str, Path]) -> None:
    """Greedy answers of the base and final model to a few prompts, for the report."""
    import torch

    from medllm.io import atomic_write_json
    from medllm.models import load_causal_lm

    if run.is_done("examples"):
        return
    run.mark("examples", "running")
    labels = list(models)
    picked = [labels[0], labels[-1]] if len(labels) > 1 else labels
    rows = []
    for label in picked:
        model, tok = load_causal_lm(models[label])
        for prompt in EXAMPLE_PROMPTS:
            ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)
            with torch.no_grad():
                out = model.generate(**ids, max_new_tokens=recipe.eval.max_new_tokens, do_sample=False,
                                     repetition_penalty=1.2)
            answer = tok.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
            rows.append({"model": label, "prompt": prompt, "answer": answer})
        del model
    atomic_write_json(run.stage_dir("examples") / "examples.json", rows)
    run.mark("examples", "done")


def _report_step(recipe, run: RunFolder) -> None:
    from medllm.pipeline.report import write_report

    run.mark("report", "running")
    paths = write_report(run)
    run.mark("report", "done", html=str(paths["html"]), markdown=str(paths["md"]))
