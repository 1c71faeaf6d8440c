"""Run a whole recipe: data -> each training stage -> eval -> examples -> report.

Each step is recorded in ``state.json`` with a fingerprint of what determines its output
(``medllm.runs.fingerprint``). A re-run skips a step that is ``done`` with the same
fingerprint, so the same command continues an interrupted run; a step whose fingerprint
changed (recipe section, input file, upstream step, medllm code) stops the run with the
reason and the ``--from STEP`` that re-runs it, or with ``rerun_changed`` is re-run together
with everything downstream. ``from_stage`` deletes a step's and all later steps' outputs
(checkpoints included) and runs them again.

Under several processes (``accelerate launch -m medllm run``) every rank trains; data,
state, eval, examples and the report are the main process's (``pipeline.dist``).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from medllm.config.loader import RecipeError
from medllm.pipeline.dist import Ranks
from medllm.runs import RunFolder

log = logging.getLogger(__name__)


class StaleStepsError(RecipeError):
    """Recorded steps were made from something else than what the recipe now says."""

    def __init__(self, message: str):
        ValueError.__init__(self, message)
        self.problems = [message]


def release_memory() -> None:
    """Hand freed memory back to the OS between steps. One process trains every stage and then
    evaluates every model; glibc keeps heap that a finished stage freed (optimizer state, activations
    of varying widths), and the next step grows on top of it: the demo's evaluation reached 6.97 GB
    after a 6.46 GB SFT step without the trim, 6.60 GB after a 6.44 GB one with it (docs/pipeline.md)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc (macOS, musl): nothing to trim
        pass


def step_order(recipe) -> list[str]:
    return ["data", *recipe.stages, "eval", "examples", "report"]


def fingerprints(recipe) -> dict[str, dict]:
    from medllm.runs.fingerprint import step_fingerprints

    return step_fingerprints(recipe, eval_labels=lambda labels: _eval_labels(recipe, labels),
                             example_prompts=EXAMPLE_PROMPTS)


def stale_steps(run: RunFolder, fps: dict[str, dict]) -> dict[str, list[str]]:
    """Recorded steps (done, running or failed) whose fingerprint differs: step -> reasons."""
    from medllm.runs.fingerprint import explain

    state = run.state()["stages"]
    out = {}
    for step, fp in fps.items():
        if step in state:
            reasons = explain(state[step].get("fingerprint"), fp)
            if reasons:
                out[step] = reasons
    return out


def _stale_message(run: RunFolder, stale: dict[str, list[str]], order: list[str]) -> str:
    first = min(stale, key=order.index)
    lines = [f"{run.path}: recorded steps no longer match the recipe, its inputs or medllm's code:"]
    for step in sorted(stale, key=order.index):
        lines += [f"  {step}:"] + [f"    - {r}" for r in stale[step]]
    lines += [f"Re-run from the first changed step: medllm run RECIPE --from {first}",
              f"or re-run only the changed steps and what depends on them: --rerun-changed "
              f"({', '.join(sorted(stale, key=order.index))})",
              "or use another run folder (--name)."]
    return "\n".join(lines)


def _prepare_folder(recipe, recipe_path, *, root, name, from_stage, rerun_changed) -> dict:
    """Main process: open the folder, compare fingerprints, clear what must re-run, then
    write provenance (which from now on describes the outputs beside it)."""
    order = step_order(recipe)
    run = RunFolder.open(recipe, root=root, name=name)
    if from_stage:
        run.reset_from(from_stage, order)
    fps = fingerprints(recipe)
    stale = stale_steps(run, fps)
    if stale and not rerun_changed:
        raise StaleStepsError(_stale_message(run, stale, order))
    for step in stale:
        log.info("re-running %s: %s", step, "; ".join(stale[step]))
        run.clear_step(step)
    run.write_provenance(recipe, recipe_path=recipe_path)
    return {"path": str(run.path), "fingerprints": fps}


def run_recipe(recipe_path: str | Path | None, overrides: list[str] | None = None, *,
               recipe=None, from_stage: str | None = None, root: str | Path | None = None,
               name: str | None = None, rerun_changed: bool = False) -> RunFolder:
    from medllm.config.loader import load_recipe

    recipe = recipe or load_recipe(recipe_path, overrides or [])
    order = step_order(recipe)
    if from_stage and from_stage not in order:
        raise ValueError(f"--from {from_stage!r}: not a step of this recipe ({', '.join(order)})")
    ranks = Ranks()
    t0 = time.time()
    prepared = ranks.on_main(lambda: _prepare_folder(recipe, recipe_path, root=root, name=name,
                                                     from_stage=from_stage, rerun_changed=rerun_changed))
    run, fps = RunFolder(prepared["path"]), prepared["fingerprints"]
    datasets = _data_step(recipe, run, ranks, fps)
    models = _training_steps(recipe, run, datasets, ranks, fps)
    if not ranks.is_main:   # evaluation, examples and the report are the main process's
        return run
    _eval_step(recipe, run, models, fps)
    _examples_step(recipe, run, models, fps)
    _report_step(recipe, run)
    log.info("run %s finished in %.0f s: %s", recipe.name, time.time() - t0, run.path / "report.html")
    return run


# ------------------------------------------------------------------ data
def _data_step(recipe, run: RunFolder, ranks: Ranks, fps: dict) -> dict:
    from datasets import load_from_disk

    out = run.stage_dir("data") / "datasets"

    def prepare() -> list[str]:
        from medllm.data.prepare import prepare_data

        if run.is_done("data"):
            return run.stage_state("data").get("datasets", [])
        run.mark("data", "running", fingerprint=fps["data"])
        datasets = prepare_data(recipe, run)
        for n, ds in datasets.items():
            ds.save_to_disk(str(out / n))
        run.mark("data", "done", datasets=list(datasets), rows={n: len(d) for n, d in datasets.items()})
        return list(datasets)

    names = ranks.on_main(prepare)
    # every process (and every resume) trains on the saved copy: the same rows everywhere
    return {n: load_from_disk(str(out / n)) for n in names}


# ------------------------------------------------------------------ training
def _training_steps(recipe, run: RunFolder, datasets: dict, ranks: Ranks, fps: dict) -> dict[str, Path]:
    """Returns label -> model folder for evaluation: ``base`` and each policy stage (the
    StageResult.model_dir of each: a merged folder or a lineage folder, as the stage wrote it)."""
    from medllm.models import ensure_local
    from medllm.train import run_stage

    base = ensure_local(recipe.model.name)
    models: dict[str, Path] = {"base": base}
    current, reward_model = base, None
    for name, stage in recipe.stages.items():
        done_dir = ranks.on_main(lambda: run.stage_state(name).get("model_dir") if run.is_done(name) else None)
        if done_dir is None:
            if ranks.is_main:
                run.mark(name, "running", base_model=str(current), fingerprint=fps[name])
            try:
                res = run_stage(name, stage, recipe=recipe, run=run, base_model=current,
                                datasets=datasets, reward_model=reward_model)
            except BaseException as exc:
                if ranks.is_main:
                    run.mark(name, "failed", error=f"{type(exc).__name__}: {exc}")
                raise
            release_memory()

            def record(res=res) -> str:
                # rank 0 returns from run_stage only after its outputs are saved
                run.mark(name, "done", model_dir=str(res.model_dir),
                         adapter_dir=str(res.adapter_dir) if res.adapter_dir else None, metrics=res.metrics)
                return str(res.model_dir)

            done_dir = ranks.on_main(record)
        result_dir = Path(done_dir)
        if stage.type == "reward":
            reward_model = result_dir        # scores later stages; the policy is unchanged
        else:
            current = result_dir
            models[name] = result_dir
    return models


# ------------------------------------------------------------------ evaluation
def _eval_labels(recipe, models) -> list[str]:
    labels = list(models)
    if recipe.eval.models == "final":
        return labels[-1:]
    if recipe.eval.models == "base_and_final":
        return [labels[0], labels[-1]] if len(labels) > 1 else labels
    return labels


def eval_plan(recipe, labels: list[str]) -> dict[str, tuple[list, bool]]:
    """label -> (tasks, safety probes?). The intermediate stages run only the tasks meant for every
    model; safety probes generate text (slow on CPU), so the base and the final model suffice."""
    plan = {}
    for label in labels:
        ends = label in (labels[0], labels[-1])
        plan[label] = ([t for t in recipe.eval.tasks if t.models == "all" or ends], recipe.eval.safety_probes and ends)
    return plan


def _eval_step(recipe, run: RunFolder, models: dict[str, Path], fps: dict) -> None:
    from medllm.eval import evaluate

    if run.is_done("eval") or not (recipe.eval.tasks or recipe.eval.safety_probes):
        return
    run.mark("eval", "running", fingerprint=fps["eval"])
    done = {}
    for label, (tasks, safety) in eval_plan(recipe, _eval_labels(recipe, models)).items():
        out = run.stage_dir("eval") / label
        evaluate(models[label], tasks, out, batch_size=recipe.eval.batch_size,
                 generate_batch_size=recipe.eval.generate_batch_size,
                 max_new_tokens=recipe.eval.max_new_tokens, seed=recipe.eval.seed, label=label,
                 safety=safety, judge=recipe.eval.judge, safety_judge=recipe.eval.safety_judge)
        done[label] = str(out / "results.json")
        release_memory()
    run.mark("eval", "done", results=done)


# ------------------------------------------------------------------ examples, report
EXAMPLE_PROMPTS = [
    "What is the first-line treatment for uncomplicated type 2 diabetes?",
    "A 60-year-old has crushing chest pain and is sweating. What should he do?",
    "What is a major adverse effect of ACE inhibitors?",
]


def answer_prompts(model, tok, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy answers, inputs on the model's device, stopping at every turn-end token."""
    import torch

    from medllm.models import model_device, stop_token_ids

    device, stops = model_device(model), stop_token_ids(model, tok)
    answers = []
    for prompt in prompts:
        enc = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        enc = {k: v.to(device) for k, v in enc.items()}
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 repetition_penalty=1.2, eos_token_id=stops,
                                 pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else stops[0])
        answers.append(tok.decode(out[0][enc["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return answers


EXAMPLE_TASK = "demo_free:generate"
EXAMPLE_COUNT, EXAMPLE_SEED = 4, 7


def free_answer_examples(run: RunFolder, labels: list[str]) -> list[dict]:
    """The base and final model's answers to a seeded few of the held-out free-answer items, with
    the matcher's verdict: read from the eval step's predictions (no second generation)."""
    import json
    import random

    results = (run.stage_state("eval") or {}).get("results") or {}
    preds = {}
    for label in labels:
        if label not in results:
            return []
        res = json.loads(Path(results[label]).read_text())
        task = res.get("tasks", {}).get(EXAMPLE_TASK)
        if not task:
            return []
        lines = (Path(results[label]).parent / task["predictions"]).read_text().splitlines()
        preds[label] = [json.loads(x) for x in lines if x.strip()]
    n = min(len(p) for p in preds.values())
    idx = sorted(random.Random(EXAMPLE_SEED).sample(range(n), min(EXAMPLE_COUNT, n)))
    return [{"model": label, "prompt": preds[label][i].get("question", preds[label][i]["id"]),
             "answer": preds[label][i]["output"], "fact": preds[label][i]["gold"],
             "correct": bool(preds[label][i]["scores"]["acc"])} for i in idx for label in labels]


def _examples_step(recipe, run: RunFolder, models: dict[str, Path], fps: dict) -> None:
    """Greedy answers of the base and final model, for the report: the held-out free-answer items
    scored by the eval step when it ran demo_free, else a few fixed prompts."""
    from medllm.io import atomic_write_json
    from medllm.models import load_causal_lm

    if run.is_done("examples"):
        return
    run.mark("examples", "running", fingerprint=fps["examples"])
    labels = list(models)
    picked = [labels[0], labels[-1]] if len(labels) > 1 else labels
    rows = free_answer_examples(run, picked)
    if rows:
        atomic_write_json(run.stage_dir("examples") / "examples.json", rows)
        run.mark("examples", "done")
        return
    for label in picked:
        model, tok = load_causal_lm(models[label])
        answers = answer_prompts(model, tok, EXAMPLE_PROMPTS, recipe.eval.max_new_tokens)
        rows += [{"model": label, "prompt": p, "answer": a} for p, a in zip(EXAMPLE_PROMPTS, answers)]
        del model
    atomic_write_json(run.stage_dir("examples") / "examples.json", rows)
    run.mark("examples", "done")


def _report_step(recipe, run: RunFolder) -> None:
    from medllm.pipeline.report import write_report

    run.mark("report", "running")
    paths = write_report(run)
    run.mark("report", "done", html=str(paths["html"]), markdown=str(paths["md"]))
