"""prepare_data: the pipeline's data stage end to end on small files, plus the CLI commands."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from medllm.config.data import CleanConfig, DataConfig, DataSource, DeidConfig, MixConfig
from medllm.config.model import ModelConfig
from medllm.config.recipe import Recipe
from medllm.data.prepare import prepare_data
from medllm.runs import RunFolder


def test_prepare_data_loads_cleans_deids_and_mixes(tmp_path, jsonl, tiny_model_dir):
    notes = jsonl("notes.jsonl", [{"text": f"Patient: Kofi Abernathy seen 02/0{i % 9 + 1}/2022 for cough number {i}."}
                                  for i in range(20)] + [{"text": "Patient: Kofi Abernathy seen 02/01/2022 for cough number 0."}])
    general = jsonl("general.jsonl", [{"text": f"General knowledge sentence {i} about the world and its weather."}
                                      for i in range(40)])
    recipe = Recipe(name="t", model=ModelConfig(name=str(tiny_model_dir)), data=DataConfig(
        sources=[DataSource(name="clinical", path=str(notes), group="clinical"),
                 DataSource(name="general", path=str(general), group="general"),
                 DataSource(name="demo", path="builtin:demo/pretrain")],
        clean=CleanConfig(near_dedup=False), deid=DeidConfig(enabled=True),
        mix=MixConfig(by="samples", weights={"clinical": 1, "general": 1})))
    run = RunFolder.create(recipe, root=tmp_path / "runs")
    out = prepare_data(recipe, run)
    assert set(out) == {"clinical", "general", "demo", "mix"}
    assert len(out["clinical"]) == 20  # the exact duplicate went
    assert not any("Abernathy" in t for t in out["clinical"]["text"])
    assert len(out["demo"]) > 500  # built-in sets are not deduplicated away
    stage = run.path / "stages" / "data"
    manifest = json.loads((stage / "data_manifest.json").read_text())
    assert manifest["sources"]["clinical"]["removed"] == {"exact_duplicate": 1}
    assert manifest["mix"]["achieved_ratio"] == {"clinical": 0.5, "general": 0.5}
    assert (stage / "deid_audit.jsonl").read_text().count('"NAME"') >= 20
    assert (stage / "clinical.clean_report.json").is_file() and (stage / "mix_manifest.json").is_file()


def test_recipe_may_train_on_mix():
    from medllm.config.checks import semantic_problems

    raw = {"data": {"sources": [{"name": "a", "path": "builtin:demo/sft"}], "mix": {"weights": {"a": 1}}},
           "stages": {"s": {"type": "sft", "data": ["mix"]}}}
    assert not [p for p in semantic_problems(raw, check_files=False) if "mix" in str(p)]


def test_cli_deid_mix_stats_synth(tmp_path, jsonl):
    from medllm.cli.main import app

    runner = CliRunner()
    src = jsonl("n.jsonl", [{"text": "Seen by Dr. Okafor on 01/02/2020, phone 617-555-0143."}])
    res = runner.invoke(app, ["data", "deid", str(src), "--out", str(tmp_path / "clean.jsonl")])
    assert res.exit_code == 0, res.output
    assert "Okafor" not in (tmp_path / "clean.jsonl").read_text()
    assert '"entity": "PHONE"' in (tmp_path / "clean.deid_audit.jsonl").read_text()
    a = jsonl("a.jsonl", [{"text": f"alpha {i}"} for i in range(30)])
    b = jsonl("b.jsonl", [{"text": f"beta {i}"} for i in range(30)])
    res = runner.invoke(app, ["data", "mix", f"x={a}", f"y={b}", "--weights", "x=3,y=1", "--by", "samples",
                              "--out", str(tmp_path / "mix.jsonl")])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "mix.manifest.json").read_text())
    assert manifest["members"]["x"]["samples_taken"] == 30 and manifest["members"]["y"]["samples_taken"] == 10
    res = runner.invoke(app, ["data", "stats", str(a), "--out-dir", str(tmp_path / "st")])
    assert res.exit_code == 0 and (tmp_path / "st" / "a.jsonl_lengths.png").is_file()
    res = runner.invoke(app, ["data", "synth-phi", "--n", "5", "--out", str(tmp_path / "phi.jsonl")])
    assert res.exit_code == 0 and len((tmp_path / "phi.jsonl").read_text().splitlines()) == 5
    res = runner.invoke(app, ["data", "deid-eval", "--notes", str(tmp_path / "phi.jsonl")])
    assert res.exit_code == 0 and "overall recall" in res.output
