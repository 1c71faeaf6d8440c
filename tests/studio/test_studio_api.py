"""The studio's back end without a browser: auth and bind refusal, validation identical to
`medllm validate`, overrides that rebuild the edited recipe, live log history, SIGTERM
bookkeeping, data problems + de-identification, compare deltas."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def test_keys_required_when_set(studio_client, key_file, tmp_path):
    from medllm.serve.audit import AuditLog, verify_audit_log
    from medllm.serve.security import KeyStore

    path, key = key_file
    audit = AuditLog(tmp_path / "audit.jsonl")
    c = studio_client(keys=KeyStore.load(path), audit=audit)
    for url in ("/api/runs", "/api/schema", "/api/chat/models"):
        assert c.get(url).status_code == 401
        assert c.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.post("/api/launch", json={"data": {}}).status_code == 401
    ok = {"Authorization": f"Bearer {key}"}
    assert c.get("/api/runs", headers=ok).json() == {"runs": [], "queue": []}
    assert c.get("/").status_code == 200          # the page itself holds no data
    # a cookie from /api/login works for GET links only (a cross-site POST cannot use it)
    c.post("/api/login", headers=ok)
    assert c.get("/api/runs").status_code == 200
    assert c.post("/api/recipe/save", json={"path": str(tmp_path / "x.yaml"), "data": {"name": "x"}}).status_code == 401
    r = c.post("/api/recipe/save", headers=ok, json={"path": str(tmp_path / "x.yaml"), "data": {"name": "x"}})
    assert r.status_code == 200 and yaml.safe_load((tmp_path / "x.yaml").read_text()) == {"name": "x"}
    rec = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(r["user"], r["endpoint"]) for r in rec] == [("dr-lee", "studio/save")]
    assert verify_audit_log(tmp_path / "audit.jsonl") == []


def test_non_loopback_bind_without_keys_refused(tmp_path):
    from medllm.studio.app import StudioError, check_bind

    with pytest.raises(StudioError, match="refusing to bind 0.0.0.0 without --api-keys"):
        check_bind("0.0.0.0", has_keys=False)
    check_bind("127.0.0.1", has_keys=False)
    check_bind("0.0.0.0", has_keys=True)
    out = subprocess.run([sys.executable, "-m", "medllm.cli.main", "studio", "--host", "0.0.0.0",
                          "--runs", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "refusing to bind 0.0.0.0" in out.stdout + out.stderr


def test_validation_is_medllm_validate(studio_client, tmp_path):
    """The form shows exactly the lines `medllm validate` prints, for the same recipe."""
    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    data["stages"]["sft"]["lr"] = -1e-3
    data["stages"]["dpo"]["betta"] = 0.2
    data["model"]["dtype"] = "float8"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    cli = subprocess.run([sys.executable, "-m", "medllm.cli.main", "validate", str(path)],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    cli_lines = [line.strip()[2:] for line in cli.stdout.splitlines() if line.strip().startswith("- ")]
    c = studio_client()
    r = c.post("/api/validate", json={"data": data}).json()
    assert [p["text"] for p in r["problems"]] == cli_lines
    assert any(p["where"] == "stages.sft.lr" and "greater than 0" in p["message"] for p in r["problems"])
    assert any("did you mean 'beta'" in p["text"] for p in r["problems"])


def test_command_is_the_file_plus_overrides(studio_client):
    import copy

    from medllm.config.loader import apply_overrides
    from medllm.studio.recipes import overrides_between

    original = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    edited = copy.deepcopy(original)
    edited["model"]["name"] = "tiny-llama"
    edited["stages"]["pretrain"]["max_steps"] = 3
    edited["eval"]["tasks"][0]["limit"] = 16
    edited["description"] = "two words: yes"
    items = overrides_between(original, edited)
    assert apply_overrides(original, items)[0] == edited
    r = studio_client().post("/api/validate", json={"data": edited, "source": "configs/demo.yaml",
                                                    "original": original}).json()
    assert r["command"].startswith("medllm run configs/demo.yaml 'description=\"two words: yes\"' "
                                   "model.name=tiny-llama stages.pretrain.max_steps=3 eval.tasks.0.limit=16 --root ")
    # a removed stage cannot be an override: the command runs a saved copy instead
    del edited["stages"]["dpo"]
    r = studio_client().post("/api/validate", json={"data": edited, "source": "configs/demo.yaml",
                                                    "original": original}).json()
    assert "/.studio/recipes/demo.yaml" in r["command"]


def test_log_history_written_as_training_goes(tmp_path):
    """Each logged step is on disk before the next one (not only at the end); a resume drops
    the steps that will be re-run."""
    from types import SimpleNamespace

    from medllm.train.observe import ProgressAndHistory, read_log_history

    args = SimpleNamespace(output_dir=str(tmp_path / "stage" / "checkpoints"))
    state = SimpleNamespace(global_step=0, max_steps=4, epoch=0.0, is_local_process_zero=False,
                            is_world_process_zero=True)
    cb = ProgressAndHistory("t")
    cb.on_train_begin(args, state, None)
    path = tmp_path / "stage" / "log_history.jsonl"
    for step, loss in ((1, 3.0), (2, 2.5), (3, 2.0)):
        state.global_step, state.epoch = step, step / 4
        cb.on_log(args, state, None, logs={"loss": loss, "learning_rate": 1e-3})
        rows = [r for r in read_log_history(path) if "loss" in r]
        assert [r["loss"] for r in rows][-1] == loss and len(rows) == step
    assert rows[-1]["eta_s"] is not None and rows[-1]["peak_rss_mb"] > 0
    with open(path, "a") as fh:
        fh.write('{"step": 4, "lo')            # a torn last line is skipped, not fatal
    assert len(read_log_history(path)) == 4
    state.global_step = 2                       # resumed from checkpoint-2
    ProgressAndHistory("t").on_train_begin(args, state, None)
    assert [r["step"] for r in read_log_history(path) if "loss" in r] == [1, 2]


def test_sigterm_marks_running_step_interrupted(tmp_path):
    from medllm.runs.folder import RunFolder

    run = RunFolder(tmp_path)
    (tmp_path / "state.json").write_text(json.dumps({"stages": {}}))
    run.mark("data", "done")
    run.mark("pretrain", "failed", error="Interrupted: stopped by signal SIGTERM")
    run.mark("eval", "running")
    assert run.mark_interrupted("stopped by signal SIGTERM") == ["pretrain", "eval"]
    st = run.state()["stages"]
    assert {k: v["status"] for k, v in st.items()} == {"data": "done", "pretrain": "interrupted", "eval": "interrupted"}


def test_data_inspect_lines_and_deid(studio_client, tmp_path):
    f = tmp_path / "notes.jsonl"
    f.write_text('{"instruction": "Patient John Smith, born 03/04/1961, phone 555-123-4567, has chest pain.", '
                 '"output": "Assess for ACS."}\n{"question": 1}\nnot json\n')
    c = studio_client()
    r = c.post("/api/data/inspect", json={"path": str(f)}).json()
    assert r["kind"] == "sft" and set(r["formats"].values()) == {"alpaca"} and r["records"] == 1
    assert [(p["line"], p["message"]) for p in r["problems"]][1][0] == 3
    assert [p["line"] for p in r["problems"]] == [2, 3]
    assert sum(r["lengths"]["prompt"]["counts"]) == 1
    d = c.post("/api/data/deid", json={"texts": r["sample_texts"]}).json()["samples"][0]
    assert "John Smith" not in d["deidentified"] and "555-123-4567" not in d["deidentified"]
    found = {s["entity"] for s in d["original_spans"]}
    assert {"NAME", "PHONE"} <= found
    assert any(d["original"][s["start"]:s["end"]] == "John Smith" for s in d["original_spans"])
    assert c.post("/api/data/inspect", json={"path": str(tmp_path / "missing.jsonl")}).json()["problems"][0]["message"] \
        == "file not found"


def _fake_run(root: Path, name: str, acc: float, lo: float, hi: float) -> None:
    run = root / name
    (run / "stages" / "eval" / "sft").mkdir(parents=True)
    res = {"tasks": {"demo_mcq:loglik": {"n": 40, "metrics": {"acc_norm": {"value": acc, "ci_low": lo, "ci_high": hi}}}}}
    (run / "stages" / "eval" / "sft" / "results.json").write_text(json.dumps(res))
    (run / "state.json").write_text(json.dumps({"stages": {
        "eval": {"status": "done", "results": {"sft": str(run / "stages" / "eval" / "sft" / "results.json")}},
        "report": {"status": "done"}}}))


def test_compare_two_runs_deltas(studio_client, tmp_path):
    c = studio_client()
    _fake_run(tmp_path / "runs", "a", 0.40, 0.30, 0.50)
    _fake_run(tmp_path / "runs", "b", 0.55, 0.45, 0.65)
    r = c.get("/api/compare?items=a&items=b").json()
    assert r["items"] == ["a:sft", "b:sft"]
    row = r["rows"][0]
    assert (row["task"], row["metric"]) == ("demo_mcq:loglik", "acc_norm")
    assert row["cells"][1]["delta"] == pytest.approx(0.15) and row["cells"][1]["ci_low"] == 0.45
    assert c.get("/api/compare?items=a").status_code == 400
    assert c.get("/api/runs/..%2Fetc/files/passwd").status_code in (400, 404)
    assert c.get("/api/runs/a/files/../../keys.txt").status_code == 404
