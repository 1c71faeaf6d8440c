"""Recipe schema: parsing, overrides, all-at-once validation with suggestions."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medllm.config.loader import RecipeError, apply_overrides, check_recipe, load_recipe, parse_value
from medllm.config.train import DPOStage, SFTStage

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def minimal(tmp_path: Path) -> dict:
    text = tmp_path / "notes.jsonl"
    text.write_text('{"text": "Aspirin inhibits platelet aggregation."}\n')
    return {
        "name": "t1",
        "model": {"name": "tiny-llama"},
        "data": {"sources": [{"name": "notes", "path": str(text), "kind": "text"}]},
        "stages": {"pretrain": {"data": ["notes"], "max_steps": 3}},
    }


def test_minimal_recipe_parses_with_defaults(tmp_path):
    r = load_recipe(write(tmp_path, minimal(tmp_path)))
    assert r.name == "t1"
    assert list(r.stages) == ["pretrain"]
    assert r.stages["pretrain"].type == "pretrain"        # type inferred from the stage name
    assert r.stages["pretrain"].adapter.method == "lora"
    assert r.serve.host == "127.0.0.1"                     # loopback by default
    assert r.serve.sampling.temperature == 0.6


def test_stage_order_is_file_order_and_types_discriminate(tmp_path):
    data = minimal(tmp_path)
    pref = tmp_path / "pairs.jsonl"
    pref.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    data["data"]["sources"].append({"name": "pairs", "path": str(pref), "kind": "preference"})
    data["stages"] = {"align": {"type": "dpo", "data": ["pairs"], "beta": 0.2},
                      "sft": {"data": ["notes"]}}
    data["data"]["sources"][0]["kind"] = "sft"
    r = load_recipe(write(tmp_path, data))
    assert list(r.stages) == ["align", "sft"]
    assert isinstance(r.stages["align"], DPOStage) and r.stages["align"].beta == 0.2
    assert isinstance(r.stages["sft"], SFTStage)


def test_overrides_apply_typed_values(tmp_path):
    p = write(tmp_path, minimal(tmp_path))
    r = load_recipe(p, ["stages.pretrain.lr=1e-4", "stages.pretrain.adapter.method=full",
                        "seed=7", "data.sources.0.max_samples=5", "eval.tasks=[]"])
    assert r.stages["pretrain"].lr == pytest.approx(1e-4)
    assert r.stages["pretrain"].adapter.method == "full"
    assert r.seed == 7 and r.data.sources[0].max_samples == 5


def test_parse_value_handles_yaml11_floats():
    assert parse_value("1e-4") == pytest.approx(1e-4)
    assert parse_value("3") == 3 and parse_value("true") is True
    assert parse_value("[a, b]") == ["a", "b"] and parse_value("hello") == "hello"


def test_bad_override_syntax_is_reported():
    _, problems = apply_overrides({"a": 1}, ["noequals", "a.b=3"])
    assert len(problems) == 2


def test_five_mistakes_all_reported_at_once(tmp_path):
    data = minimal(tmp_path)
    data["model"]["dtyp"] = "bfloat16"                        # 1 unknown key (typo)
    data["stages"]["pretrain"]["learning_rate"] = 1e-4         # 2 unknown key (other tool's name)
    data["stages"]["pretrain"]["batch_size"] = 0               # 3 bad value
    data["data"]["sources"].append({"name": "gone", "path": str(tmp_path / "missing.jsonl")})  # 4 missing file
    data["stages"]["dpo"] = {"data": ["notes"]}                # 5 incompatible: dpo on text data
    recipe, problems = check_recipe(write(tmp_path, data))
    assert recipe is None
    text = "\n".join(map(str, problems))
    assert len(problems) == 5, text
    assert "model.dtyp: unknown key 'dtyp' (did you mean 'dtype'?)" in text
    assert "did you mean 'lr'" in text
    assert "stages.pretrain.batch_size" in text
    assert "missing.jsonl" in text
    assert "stages.dpo.data.0" in text


def test_unknown_stage_type_and_unknown_source_reference(tmp_path):
    data = minimal(tmp_path)
    data["stages"]["x"] = {"type": "ppo", "data": ["notes"]}
    data["stages"]["pretrain"]["data"] = ["nope"]
    _, problems = check_recipe(write(tmp_path, data))
    text = "\n".join(map(str, problems))
    assert "unknown stage type 'ppo'" in text
    assert "'nope' is not a data source name" in text


def test_rejection_sampling_needs_a_scorer(tmp_path):
    data = minimal(tmp_path)
    data["data"]["sources"][0]["kind"] = "sft"
    data["stages"] = {"rs": {"type": "rejection_sampling", "data": ["notes"], "k": 2, "top_n": 3}}
    _, problems = check_recipe(write(tmp_path, data))
    text = "\n".join(map(str, problems))
    assert "needs a reward stage earlier" in text and "top_n (3) cannot exceed k (2)" in text


def test_freeze_layers_is_for_full_fine_tuning_only(tmp_path):
    data = minimal(tmp_path)
    data["stages"]["pretrain"]["adapter"] = {"method": "lora", "freeze_layers": 4}
    _, problems = check_recipe(write(tmp_path, data))
    assert any("freeze_layers" in str(p) and "full fine-tuning only" in str(p) for p in problems), problems
    data["stages"]["pretrain"]["adapter"] = {"method": "full", "freeze_layers": 4}
    _, problems = check_recipe(write(tmp_path, data))
    assert not problems


def test_pad_to_multiple_of_on_packed_rows_is_refused_not_ignored(tmp_path):
    data = minimal(tmp_path)   # pretrain packs by default
    data["stages"]["pretrain"]["pad_to_multiple_of"] = 8
    _, problems = check_recipe(write(tmp_path, data))
    assert any("pad_to_multiple_of" in str(p) and "packs its rows" in str(p) for p in problems), problems
    data["stages"]["pretrain"]["packing"] = False
    _, problems = check_recipe(write(tmp_path, data))
    assert not problems


def test_public_bind_without_keys_is_refused(tmp_path):
    data = minimal(tmp_path)
    data["serve"] = {"host": "0.0.0.0"}
    _, problems = check_recipe(write(tmp_path, data))
    assert any("api_keys_file" in str(p) for p in problems)


def test_invalid_yaml_reports_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: a\nstages:\n  sft: {data: [x\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(p)
    assert "broken.yaml:" in str(exc.value) and "invalid YAML" in str(exc.value)


@pytest.mark.parametrize("recipe", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_parses(recipe):
    # Seed-scale recipes point at hospital files and 8B models that are not here:
    # check types/keys/combinations, not file existence.
    load_recipe(recipe, check_files=False)


def test_a_task_for_base_and_final_skips_the_intermediate_stages(tmp_path):
    from medllm.pipeline.runner import eval_plan

    data = minimal(tmp_path)
    data["eval"] = {"tasks": [{"task": "demo_mcq"}, {"task": "pubmedqa", "models": "base_and_final"}]}
    plan = eval_plan(load_recipe(write(tmp_path, data)), ["base", "pretrain", "sft", "dpo"])
    names = {label: [t.task for t in tasks] for label, (tasks, _) in plan.items()}
    assert names == {"base": ["demo_mcq", "pubmedqa"], "pretrain": ["demo_mcq"], "sft": ["demo_mcq"],
                     "dpo": ["demo_mcq", "pubmedqa"]}
    assert [label for label, (_, safety) in plan.items() if safety] == ["base", "dpo"]
