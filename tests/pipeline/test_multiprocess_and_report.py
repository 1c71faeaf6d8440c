"""The pipeline under two processes (gloo on CPU) produces the run folder one process does,
and the report's data section and task meanings are filled on a tiny run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow


def tiny_recipe(tmp_path: Path, name: str, batch: int) -> Path:
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(json.dumps({"text": f"Note {i}: metformin is first-line for type 2 diabetes; "
                                                 f"heparin is an anticoagulant given to patient {i}."}) + "\n"
                             for i in range(16)))
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Question {i}: first-line drug for T2D?"},
                                                   {"role": "assistant", "content": "Metformin."}]}) + "\n"
                          for i in range(16)))
    recipe = {"name": name, "output_dir": str(tmp_path / "runs"), "model": {"name": "tiny-llama"}, "seed": 7,
              "data": {"sources": [{"name": "notes", "path": str(notes), "kind": "text"},
                                   {"name": "qa", "path": str(qa), "kind": "sft"}],
                       "clean": {"enabled": False}},
              # Two things differ between 1 and 2 processes by design, not by a bug, so the recipe
              # avoids them: accelerate repeats rows to fill a last global batch that is not full
              # (60-token blocks: the notes make 8 blocks = 2 full batches of 4), and dropout draws
              # its masks per process (LoRA dropout 0).
              "stages": {"pretrain": {"type": "pretrain", "data": ["notes"], "max_steps": 2, "batch_size": batch,
                                      "max_seq_len": 60, "lr": 1e-3, "adapter": {"method": "full"}},
                         "sft": {"type": "sft", "data": ["qa"], "max_steps": 2, "batch_size": batch,
                                 "max_seq_len": 64, "lr": 1e-3, "adapter": {"method": "lora", "dropout": 0.0}}},
              "eval": {"tasks": [{"task": "demo_mcq", "mode": "loglik", "limit": 4}], "safety_probes": False,
                       "max_new_tokens": 4}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _weights(model_dir: str) -> dict:
    from safetensors.torch import load_file

    out = {}
    folder = Path(model_dir)
    if (folder / "model.json").is_file():   # a LoRA stage keeps its adapter (lineage), not merged weights
        folder = folder / "adapter"
    files = sorted(folder.glob("*.safetensors"))
    assert files, f"no weights in {folder}"
    for f in files:
        out.update(load_file(str(f)))
    return out


def test_two_processes_make_the_same_run_folder_as_one(tmp_path):
    env = {**os.environ, "MEDLLM_QUIET": "1", "OMP_NUM_THREADS": "1"}
    one = tiny_recipe(tmp_path, "one", batch=4)
    two = tiny_recipe(tmp_path, "two", batch=2)          # 2 processes x 2 rows = the same 4-row step
    r1 = subprocess.run([sys.executable, "-m", "medllm", "run", str(one)], env=env, capture_output=True, text=True,
                        timeout=600)
    assert r1.returncode == 0, r1.stderr[-3000:]
    r2 = subprocess.run([sys.executable, "-m", "medllm", "run", str(two), "--nproc", "2"], env=env,
                        capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr[-3000:]
    s1 = json.loads((tmp_path / "runs" / "one" / "state.json").read_text())["stages"]
    s2 = json.loads((tmp_path / "runs" / "two" / "state.json").read_text())["stages"]
    done = ["data", "pretrain", "sft", "eval", "examples", "report"]
    assert [k for k, v in s1.items() if v["status"] == "done"] == done
    assert [k for k, v in s2.items() if v["status"] == "done"] == done
    assert s2["sft"]["metrics"]["world_size"] == 2
    for stage in ("pretrain", "sft"):
        w1, w2 = _weights(s1[stage]["model_dir"]), _weights(s2[stage]["model_dir"])
        assert w1.keys() == w2.keys()
        worst = max(float((w1[k].float() - w2[k].float()).abs().max()) for k in w1)
        assert worst < 2e-3, (stage, worst)
    # the eval ran once (main process only), with the same scores
    for label in ("base", "pretrain", "sft"):
        m1 = json.loads((tmp_path / "runs" / "one" / "stages" / "eval" / label / "results.json").read_text())
        m2 = json.loads((tmp_path / "runs" / "two" / "stages" / "eval" / label / "results.json").read_text())
        assert m1["tasks"]["demo_mcq:loglik"]["n"] == m2["tasks"]["demo_mcq:loglik"]["n"] == 4
    # the report of the tiny run shows its data and says what each number measures
    md = (tmp_path / "runs" / "one" / "report.md").read_text()
    data = md.split("## Data")[1].split("## Evaluation")[0]
    assert "| notes | 16 |" in data and "| qa | 16 |" in data
    assert "knowledge uptake: picks the taught fact among 4 options (held-out rewording of the training KB)" in md
    html = (tmp_path / "runs" / "one" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 + 2        # loss curves + the two length histograms
    summary = json.loads((tmp_path / "runs" / "one" / "stages" / "data" / "summary.json").read_text())
    assert summary["datasets"]["qa"]["response"]["count"] == 16 and summary["unit"] == "tokens"
