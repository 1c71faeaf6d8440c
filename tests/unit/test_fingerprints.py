"""Step fingerprints: a change to a recipe value, a data file or an eval task invalidates
exactly the step that reads it and everything downstream; a stale run stops with the reason
and the --from that fixes it; --from and --rerun-changed delete old outputs (checkpoints
included); provenance files are not rewritten over outputs they do not describe."""
from __future__ import annotations

import json

import pytest
import yaml

from medllm.config.loader import load_recipe


def make_recipe(tmp_path, *, lr=1e-3, eval_tasks=None, notes="Metformin is first-line for type 2 diabetes."):
    src = tmp_path / "notes.jsonl"
    if not src.exists() or notes is not None:
        src.write_text(json.dumps({"text": notes}) + "\n")
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"messages": [{"role": "user", "content": "First-line for T2D?"},
                                           {"role": "assistant", "content": "Metformin."}]}) + "\n")
    return load_recipe(data={
        "name": "fp", "output_dir": str(tmp_path / "runs"), "model": {"name": "tiny-llama"},
        "data": {"sources": [{"name": "n", "path": str(src), "kind": "text"},
                             {"name": "qa", "path": str(qa), "kind": "sft"}]},
        "stages": {"pretrain": {"type": "pretrain", "data": ["n"], "lr": 1e-3},
                   "sft": {"type": "sft", "data": ["qa"], "lr": lr}},
        "eval": {"tasks": eval_tasks or [{"task": "demo_mcq", "limit": 4}], "safety_probes": False}})


def _finish_all(recipe):
    """Pretend every step ran with this recipe: state + a checkpoint file per stage."""
    from medllm.pipeline.runner import _prepare_folder, fingerprints

    info = _prepare_folder(recipe, None, root=None, name=None, from_stage=None, rerun_changed=False)
    from medllm.runs import RunFolder

    run = RunFolder(info["path"])
    for step, fp in fingerprints(recipe).items():
        run.mark(step, "running", fingerprint=fp)
        (run.stage_dir(step) / "checkpoints").mkdir(exist_ok=True)
        (run.stage_dir(step) / "checkpoints" / "checkpoint-2").write_text("old")
        run.mark(step, "done")
    return run


def _stale(recipe):
    from medllm.pipeline.runner import fingerprints, stale_steps
    from medllm.runs import RunFolder

    run = RunFolder.open(recipe)
    return stale_steps(run, fingerprints(recipe))


def test_same_recipe_is_current(tmp_path):
    recipe = make_recipe(tmp_path)
    _finish_all(recipe)
    assert _stale(make_recipe(tmp_path)) == {}


def test_changed_sft_lr_invalidates_sft_and_downstream_only(tmp_path):
    _finish_all(make_recipe(tmp_path))
    stale = _stale(make_recipe(tmp_path, lr=5e-4))
    assert list(stale) == ["sft", "eval", "examples"]
    assert any("stages.sft.lr: 0.001 -> 0.0005" in r for r in stale["sft"])
    assert stale["eval"] == ["consumes sft, which changed"]


def test_changed_data_file_invalidates_data_and_every_stage(tmp_path):
    _finish_all(make_recipe(tmp_path))
    stale = _stale(make_recipe(tmp_path, notes="Insulin is first-line in type 1 diabetes."))
    assert list(stale) == ["data", "pretrain", "sft", "eval", "examples"]
    assert any("notes.jsonl: content changed" in r for r in stale["data"])


def test_changed_eval_task_invalidates_eval_only(tmp_path):
    _finish_all(make_recipe(tmp_path))
    stale = _stale(make_recipe(tmp_path, eval_tasks=[{"task": "demo_mcq", "limit": 8}]))
    # the examples are read from the eval step's predictions, so they follow it; no training step does
    assert list(stale) == ["eval", "examples"]
    assert any("eval.tasks" in r and "limit" in r for r in stale["eval"])


def test_eval_hook_joins_the_eval_fingerprint(tmp_path, monkeypatch):
    from medllm.runs import fingerprint as F

    _finish_all(make_recipe(tmp_path))
    monkeypatch.setattr(F, "_EVAL_PARTS", [])
    F.register_eval_part(lambda recipe: {"judge_weights": "sha-of-another-judge"})
    stale = _stale(make_recipe(tmp_path))
    assert list(stale) == ["eval", "examples"] and "eval settings outside the recipe changed" in stale["eval"]


def test_stale_run_stops_naming_change_and_from_and_keeps_provenance(tmp_path):
    from medllm.pipeline.runner import StaleStepsError, _prepare_folder

    run = _finish_all(make_recipe(tmp_path))
    before = (run.path / "recipe.yaml").read_text()
    with pytest.raises(StaleStepsError) as err:
        _prepare_folder(make_recipe(tmp_path, lr=5e-4), None, root=None, name=None, from_stage=None,
                        rerun_changed=False)
    msg = str(err.value)
    assert "stages.sft.lr" in msg and "--from sft" in msg and "--rerun-changed" in msg
    assert (run.path / "recipe.yaml").read_text() == before          # still describes the outputs
    assert (run.path / "stages" / "sft" / "checkpoints" / "checkpoint-2").is_file()


def test_rerun_changed_clears_exactly_the_changed_steps_and_writes_new_provenance(tmp_path):
    from medllm.pipeline.runner import _prepare_folder

    run = _finish_all(make_recipe(tmp_path))
    _prepare_folder(make_recipe(tmp_path, lr=5e-4), None, root=None, name=None, from_stage=None, rerun_changed=True)
    state = run.state()["stages"]
    assert [s for s in ("data", "pretrain", "sft", "eval", "examples") if s in state] == ["data", "pretrain"]
    assert not (run.path / "stages" / "sft").exists()                # old checkpoints gone: no stale resume
    assert (run.path / "stages" / "pretrain" / "checkpoints" / "checkpoint-2").is_file()
    assert yaml.safe_load((run.path / "recipe.yaml").read_text())["stages"]["sft"]["lr"] == 5e-4


def test_from_clears_that_stage_and_later_checkpoints(tmp_path):
    from medllm.pipeline.runner import _prepare_folder

    run = _finish_all(make_recipe(tmp_path))
    _prepare_folder(make_recipe(tmp_path), None, root=None, name=None, from_stage="sft", rerun_changed=False)
    assert run.is_done("pretrain") and not run.stage_state("sft")
    assert not (run.path / "stages" / "sft" / "checkpoints").exists()
    assert not (run.path / "stages" / "eval").exists()
    assert (run.path / "stages" / "pretrain" / "checkpoints" / "checkpoint-2").is_file()
