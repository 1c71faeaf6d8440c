"""``medllm train`` from the command line."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from medllm.cli.main import app


@pytest.mark.slow
def test_train_sft_cli(tmp_path, tiny_model_dir, sft_ds):
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sft_ds.to_list()))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["train", "sft", "--model", str(tiny_model_dir), "--data", str(data),
                                   "--out", str(out), "max_steps=2", "batch_size=2", "bf16=false"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    # a LoRA stage keeps its adapter + lineage (merged weights only on demand)
    assert metrics["global_step"] == 2 and (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "model.json").is_file() and not (out / "merged").exists()


def test_train_cli_rejects_bad_settings(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "sft", "--data", "x.jsonl", "adapter.method=bogus", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "adapter.method" in res.output
    res = runner.invoke(app, ["train", "finetune", "--data", "x.jsonl"])
    assert res.exit_code == 1 and "unknown stage" in res.output
