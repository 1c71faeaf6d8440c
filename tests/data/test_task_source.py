"""Data sources that name an eval task (the supervised setting): the task's loader reads the
file and each example becomes the task's generate prompt -> its gold answer."""
from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from medllm.config.loader import check_recipe
from medllm.data.task_source import TaskSourceError, load_task_source

PUBMEDQA_ROWS = [
    {"pubid": "111", "QUESTION": "Does aspirin lower stroke risk?",
     "CONTEXTS": ["Aspirin was given to 200 patients.", "Strokes fell by a third."], "final_decision": "yes"},
    {"pubid": "222", "QUESTION": "Is vitamin C a cure for sepsis?",
     "CONTEXTS": ["A trial of 100 septic patients found no benefit."], "final_decision": "no"},
]
SYSTEM = {"role": "system", "content": "You are a careful medical assistant."}


def test_pubmedqa_rows_become_generate_prompt_and_label(jsonl):
    path = jsonl("pqal_train.jsonl", PUBMEDQA_ROWS)
    loaded = load_task_source(path, "pubmedqa", name="pubmedqa_train")
    assert loaded.kind == "sft" and loaded.files == [str(path)] and loaded.problems == []
    assert loaded.dataset["source"] == ["pubmedqa_train", "pubmedqa_train"]
    first, second = loaded.dataset["messages"]
    assert first == [SYSTEM, {"role": "user", "content":
                              "Given a PubMed abstract and a research question, answer the question with yes, no or "
                              "maybe.\n\nAbstract: Aspirin was given to 200 patients.\nStrokes fell by a third.\n"
                              "Question: Does aspirin lower stroke risk?\n\nAnswer with one word: yes, no or maybe."},
                     {"role": "assistant", "content": "yes"}]
    assert second[1]["content"] == (
        "Given a PubMed abstract and a research question, answer the question with yes, no or maybe.\n\n"
        "Abstract: A trial of 100 septic patients found no benefit.\nQuestion: Is vitamin C a cure for sepsis?"
        "\n\nAnswer with one word: yes, no or maybe.")
    assert second[2] == {"role": "assistant", "content": "no"}
    assert len(load_task_source(path, "pubmedqa", max_samples=1).dataset) == 1


def test_letter_mcq_and_reference_text_answers(jsonl):
    medqa = jsonl("medqa.jsonl", [{"question": "First-line drug for type 2 diabetes?",
                                   "options": {"A": "Insulin", "B": "Metformin"}, "answer_idx": "B"}])
    msgs = load_task_source(medqa, "medqa").dataset[0]["messages"]
    assert msgs[1]["content"] == ("Answer the following USMLE-style multiple choice question with the letter of the "
                                  "correct option.\n\nQuestion: First-line drug for type 2 diabetes?\nOptions:\n"
                                  "A. Insulin\nB. Metformin\n\nAnswer:")
    assert msgs[2] == {"role": "assistant", "content": "B"}
    meqsum = jsonl("meqsum.jsonl", [{"CHQ": "my son has had a fever for 3 days what do i do",
                                     "Summary": "How should a 3-day fever in a child be managed?"}])
    msgs = load_task_source(meqsum, "meqsum").dataset[0]["messages"]
    assert msgs[1]["content"].endswith("my son has had a fever for 3 days what do i do\n\nSummary:")
    assert msgs[2]["content"] == "How should a 3-day fever in a child be managed?"


def test_unsupported_type_and_bad_rows_are_named(jsonl):
    cases = jsonl("cases.jsonl", [{"id": "c1", "case": "Fever and rash.", "diagnosis": "measles"}])
    with pytest.raises(TaskSourceError, match=r"type diagnosis\) cannot be used as training data"):
        load_task_source(cases, "diagnosis", name="cases")
    bad = jsonl("bad.jsonl", [dict(PUBMEDQA_ROWS[0], final_decision="perhaps")])
    with pytest.raises(TaskSourceError, match=r"data source 'qa' \(task pubmedqa\): .*bad.jsonl:1: "
                                              r"field 'final_decision'"):
        load_task_source(bad, "pubmedqa", name="qa")


def _recipe(tmp_path, source: dict, stage_type: str = "sft") -> dict:
    return {"name": "sup", "model": {"name": "tiny-llama"},
            "data": {"sources": [source]}, "stages": {"train": {"type": stage_type, "data": [source["name"]]}}}


def test_bad_task_name_is_a_validation_problem_with_a_suggestion(tmp_path, jsonl):
    path = jsonl("pqal.jsonl", PUBMEDQA_ROWS)
    recipe, problems = check_recipe(data=_recipe(tmp_path, {"name": "qa", "path": str(path), "task": "pubmedq"}))
    assert recipe is None
    assert [p.where for p in problems] == ["data.sources.0.task"]
    assert "unknown eval task 'pubmedq' (did you mean 'pubmedqa'?)" in problems[0].message
    # a task source is sft data: format options and a pretrain stage do not fit it
    _, problems = check_recipe(data=_recipe(tmp_path, {"name": "qa", "path": str(path), "task": "pubmedqa",
                                                       "format": "alpaca"}, stage_type="pretrain"))
    assert sorted(p.where for p in problems) == ["data.sources.0.format", "stages.train.data.0"]
    recipe, problems = check_recipe(data=_recipe(tmp_path, {"name": "qa", "path": str(path), "task": "pubmedqa"}))
    assert problems == [] and recipe.data.sources[0].task == "pubmedqa"


def test_validate_cli_reports_bad_task(tmp_path, jsonl):
    from medllm.cli.main import app

    path = jsonl("pqal.jsonl", PUBMEDQA_ROWS)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(tmp_path, {"name": "qa", "path": str(path), "task": "medqaa"})))
    res = CliRunner().invoke(app, ["validate", str(recipe)])
    assert res.exit_code == 1
    assert "data.sources.0.task" in res.output and "did you mean 'medqa'" in res.output, res.output


def test_prepare_data_reads_task_sources(tmp_path, jsonl, tiny_model_dir):
    from medllm.config.data import CleanConfig, DataConfig, DataSource
    from medllm.config.model import ModelConfig
    from medllm.config.recipe import Recipe
    from medllm.data.prepare import prepare_data
    from medllm.runs import RunFolder

    path = jsonl("pqal.jsonl", PUBMEDQA_ROWS)
    recipe = Recipe(name="t", model=ModelConfig(name=str(tiny_model_dir)), data=DataConfig(
        sources=[DataSource(name="qa", path=str(path), task="pubmedqa")], clean=CleanConfig(near_dedup=False)))
    run = RunFolder.create(recipe, root=tmp_path / "runs")
    out = prepare_data(recipe, run)
    assert out["qa"]["messages"][1][2]["content"] == "no"
    entry = json.loads((run.path / "stages" / "data" / "data_manifest.json").read_text())["sources"]["qa"]
    assert entry["task"] == "pubmedqa" and entry["kind"] == "sft" and entry["after_clean"] == 2
    assert list(entry["files_sha256"]) == [str(path)]
