"""Run folders: provenance written, state drives resume, writes are atomic."""
from __future__ import annotations

import json

import pytest
import yaml

from medllm.config.loader import load_recipe
from medllm.io import atomic_dir, atomic_write_text, sha256_file
from medllm.runs import RunFolder, list_runs


def make_recipe(tmp_path):
    src = tmp_path / "notes.txt.jsonl"
    src.write_text('{"text": "Metformin is first-line for type 2 diabetes."}\n')
    return load_recipe(data={"name": "r1", "output_dir": str(tmp_path / "runs"), "model": {"name": "tiny-llama"},
                             "data": {"sources": [{"name": "n", "path": str(src), "kind": "text"}]},
                             "stages": {"pretrain": {"data": ["n"], "lr": 1e-3}}}), src


def test_create_records_everything(tmp_path):
    recipe, src = make_recipe(tmp_path)
    run = RunFolder.create(recipe, recipe_path="x.yaml")
    resolved = yaml.safe_load((run.path / "recipe.yaml").read_text())
    assert resolved["stages"]["pretrain"]["lr"] == 1e-3
    assert resolved["stages"]["pretrain"]["adapter"]["method"] == "lora"   # defaults resolved
    env = json.loads((run.path / "environment.json").read_text())
    assert env["versions"]["torch"].startswith("2.13") and "revision" in env["git"]
    inputs = json.loads((run.path / "inputs.json").read_text())
    assert inputs[str(src)]["sha256"] == sha256_file(src)
    assert run.recipe().stages["pretrain"].lr == 1e-3     # round-trips through the schema


def test_state_and_resume_bookkeeping(tmp_path):
    recipe, _ = make_recipe(tmp_path)
    run = RunFolder.create(recipe)
    run.mark("data", "done")
    run.mark("pretrain", "running")
    assert run.is_done("data") and not run.is_done("pretrain")
    run.mark("pretrain", "done", model_dir="m")
    assert run.stage_state("pretrain")["model_dir"] == "m" and run.stage_state("pretrain")["seconds"] >= 0
    run.reset_from("pretrain", ["data", "pretrain", "eval"])
    assert run.is_done("data") and run.stage_state("pretrain") == {}
    # re-creating keeps state (continuing an interrupted run)
    RunFolder.create(recipe)
    assert run.is_done("data")
    assert [r["name"] for r in list_runs(tmp_path / "runs")] == ["r1"]


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")
    import os

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]   # no temp litter


def test_atomic_dir_replaces_whole_folder_or_nothing(tmp_path):
    final = tmp_path / "ckpt"
    with atomic_dir(final) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("killed")
    assert (final / "a").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_file_hash_is_reused_until_the_file_changes(tmp_path):
    import os

    from medllm.runs.provenance import file_sha256

    f = tmp_path / "corpus.txt"
    f.write_text("aspirin")
    first = file_sha256(f)
    assert first == sha256_file(f) and file_sha256(f) == first
    f.write_text("heparin!")
    os.utime(f, ns=(1, 1))            # a different size and mtime: hashed again
    assert file_sha256(f) == sha256_file(f) != first
