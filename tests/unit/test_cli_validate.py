"""`medllm validate` prints every problem and exits non-zero."""
from __future__ import annotations

import yaml
from typer.testing import CliRunner

from medllm.cli.main import app


def test_validate_cli_lists_all_problems(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "x", "model": {"name": "tiny-llama", "dtype": "int3"},
        "stages": {"sft": {"data": [str(tmp_path / "none.jsonl")], "epochs": 0, "lora": 8}},
        "eval": {"tasks": [{"task": "pubmedqa", "path": str(tmp_path / "nope.jsonl")}]},
    }))
    res = CliRunner().invoke(app, ["validate", str(recipe)])
    assert res.exit_code == 1
    out = res.output
    for needle in ("model.dtype", "stages.sft.epochs", "stages.sft.lora", "none.jsonl", "eval.tasks.0.path"):
        assert needle in out, out
    assert "5 problem(s)" in out


def test_validate_cli_ok(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"name": "ok", "model": {"name": "tiny-llama"}}))
    res = CliRunner().invoke(app, ["validate", str(recipe)])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output
