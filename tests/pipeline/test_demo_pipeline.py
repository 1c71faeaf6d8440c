"""End to end: a shortened demo recipe on tiny-llama — every artefact exists, the report
renders, no outside network, and a killed run continues where it stopped."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def short_demo(tmp_path: Path, name: str = "demo-tiny") -> Path:
    """configs/demo.yaml, shrunk: tiny model, a few samples and steps per stage."""
    recipe = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    recipe["name"] = name
    recipe["output_dir"] = str(tmp_path / "runs")
    recipe["model"]["name"] = "tiny-llama"
    for src in recipe["data"]["sources"]:
        src["max_samples"] = 24
    for stage in recipe["stages"].values():
        stage.update(max_steps=2, batch_size=4, max_seq_len=128)
    recipe["eval"]["tasks"] = [{"task": "demo_mcq", "mode": "loglik", "limit": 16},
                               {"task": "demo_free", "mode": "generate", "limit": 6}]
    recipe["eval"]["max_new_tokens"] = 8
    path = tmp_path / "demo-tiny.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_short_demo_end_to_end(tmp_path, no_network):
    from medllm.pipeline import run_recipe

    run = run_recipe(short_demo(tmp_path))
    state = json.loads((run.path / "state.json").read_text())["stages"]
    assert [s for s, v in state.items() if v["status"] == "done"] == \
        ["data", "pretrain", "sft", "dpo", "eval", "examples", "report"]
    # the full fine-tuning stage (sft) writes its weights once, with their sha256 manifest
    sft_dir = Path(state["sft"]["model_dir"])
    assert sft_dir.name == "merged" and (sft_dir / "medllm_manifest.json").is_file()
    assert any(sft_dir.glob("*.safetensors"))
    for stage in ("pretrain", "dpo"):
        model_dir = Path(state[stage]["model_dir"])
        # LoRA stages keep the adapter and a lineage (base + adapters), never a full merged copy
        lineage = json.loads((model_dir / "model.json").read_text())
        assert Path(lineage["adapters"][-1]).resolve() == (model_dir / "adapter").resolve(), stage
        assert any((model_dir / "adapter").glob("*.safetensors")), stage
        assert (Path(lineage["base"]) / "config.json").is_file()
        assert not (model_dir / "merged").exists(), stage
    # stage N+1 started from stage N's result
    assert state["sft"]["base_model"] == state["pretrain"]["model_dir"]
    assert state["dpo"]["base_model"] == state["sft"]["model_dir"]
    for label in ("base", "pretrain", "sft", "dpo"):
        res = json.loads((run.path / "stages" / "eval" / label / "results.json").read_text())
        assert "demo_mcq:loglik" in res["tasks"]
        free = res["tasks"]["demo_free:generate"]
        assert free["n"] == 6 and 0 <= free["metrics"]["acc"]["ci_low"] <= free["metrics"]["acc"]["ci_high"] <= 1
    # the report's examples are held-out free-answer items with the matcher's verdict, as scored
    examples = json.loads((run.path / "stages" / "examples" / "examples.json").read_text())
    preds = {json.loads(x)["id"]: json.loads(x) for x in (run.path / "stages" / "eval" / "dpo" / "predictions"
                                                          / "demo_free_generate.jsonl").read_text().splitlines()}
    final = [e for e in examples if e["model"] == "dpo"]
    assert len(final) == 4 and {e["model"] for e in examples} == {"base", "dpo"}
    by_question = {p["question"]: p for p in preds.values()}
    for e in final:
        assert e["answer"] == by_question[e["prompt"]]["output"]
        assert e["correct"] == bool(by_question[e["prompt"]]["scores"]["acc"])
    for f in ("recipe.yaml", "environment.json", "inputs.json", "report.md", "report.html", "report.json"):
        assert (run.path / f).is_file(), f
    html = (run.path / "report.html").read_text()
    assert "<table>" in html and "demo_mcq" in html and "data:image/png;base64," in html
    assert "demo_free" in html and "Matcher: <b>" in html and "knowledge uptake" in html
    assert "not a substitute" in html and f"medllm serve {run.path}" in html
    assert no_network == []


def test_killed_run_continues_where_it_stopped(tmp_path):
    recipe = short_demo(tmp_path, "demo-resume")
    run_dir = tmp_path / "runs" / "demo-resume"
    env = {**os.environ, "MEDLLM_QUIET": "1"}
    cmd = [sys.executable, "-m", "medllm.cli.main", "run", str(recipe)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    state_file = run_dir / "state.json"
    while time.time() < deadline:
        if state_file.is_file():
            st = json.loads(state_file.read_text())["stages"]
            if st.get("pretrain", {}).get("status") == "done":
                break
        if proc.poll() is not None:
            pytest.fail(f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = json.loads(state_file.read_text())["stages"]
    assert first["pretrain"]["status"] == "done"
    assert first.get("report", {}).get("status") != "done"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    second = json.loads(state_file.read_text())["stages"]
    assert second["pretrain"]["started"] == first["pretrain"]["started"]   # not re-run
    assert second["report"]["status"] == "done"
    assert "report:" in done.stdout
