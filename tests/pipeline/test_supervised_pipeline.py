"""The supervised setting end to end on tiny-llama: an eval task's file as SFT data, then the
same task evaluated on the base and the fine-tuned model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _pubmedqa(path: Path, start: int, n: int) -> Path:
    rows = [{"pubid": str(1000 + i), "QUESTION": f"Does treatment {i} reduce mortality?",
             "CONTEXTS": [f"Patients given treatment {i} were followed for a year.", "Mortality was recorded."],
             "final_decision": ("yes", "no", "maybe")[i % 3]} for i in range(start, start + n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_supervised_recipe_trains_on_task_and_evaluates_base_and_final(tmp_path):
    from medllm.pipeline import run_recipe

    train = _pubmedqa(tmp_path / "train.jsonl", 0, 8)
    test = _pubmedqa(tmp_path / "test.jsonl", 100, 3)
    recipe = yaml.safe_load((REPO / "configs" / "supervised-pubmedqa.yaml").read_text())
    recipe["output_dir"] = str(tmp_path / "runs")
    recipe["model"]["name"] = "tiny-llama"
    recipe["data"]["sources"][0]["path"] = str(train)
    recipe["data"]["clean"]["decontaminate"] = [str(test)]
    recipe["stages"]["sft"].update(max_steps=2, batch_size=4, max_seq_len=256)
    for task in recipe["eval"]["tasks"]:
        task.update(path=str(test), limit=3)
    recipe["eval"]["max_new_tokens"] = 4
    path = tmp_path / "supervised-tiny.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))

    run = run_recipe(path)
    state = json.loads((run.path / "state.json").read_text())["stages"]
    assert state["data"]["rows"] == {"pubmedqa_train": 8}
    assert state["sft"]["status"] == "done" and state["eval"]["status"] == "done"
    for label in ("base", "sft"):
        results = run.path / "stages" / "eval" / label / "results.json"
        assert results.is_file(), label
        tasks = json.loads(results.read_text())["tasks"]
        assert {"pubmedqa:loglik", "pubmedqa:generate"} <= set(tasks)
        assert all(t["n"] == 3 for t in tasks.values())


def test_shipped_recipe_scores_a_fair_test_slice_within_memory_budget():
    """pqal_test.jsonl is sorted by label: a first-N limit would score "yes" items only. And the
    effective batch stays 8 while the micro-batch (what sets peak memory) is small."""
    recipe = yaml.safe_load((REPO / "configs" / "supervised-pubmedqa.yaml").read_text())
    for task in recipe["eval"]["tasks"]:
        assert task.get("limit") is None or task.get("sample") == "random", task
    sft = recipe["stages"]["sft"]
    assert sft["batch_size"] * sft.get("grad_accum", 1) == 8 and sft["batch_size"] <= 2
    assert sft["max_seq_len"] >= 880  # the longest dev conversation keeps its answer
