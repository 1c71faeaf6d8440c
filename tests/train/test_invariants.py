"""Training invariants: accumulation equivalence, exact resume after SIGKILL, 2-process DDP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from medllm.config.train import SFTStage
from medllm.train import run_stage

pytestmark = pytest.mark.slow
# fp32, no dropout, plain shuffling: runs that differ only in batch layout must agree
EXACT = dict(bf16="false", lr=1e-3, log_every=1, length_grouping=False, warmup_ratio=0.0,
             adapter={"method": "lora", "dropout": 0.0})


def _losses(res):
    return [loss for _, loss in res.metrics["loss_history"]]


def test_batch8_accum1_equals_batch1_accum8(tmp_path, tiny_model_dir, sft_ds):
    a = run_stage("a", SFTStage(data=["d"], batch_size=8, grad_accum=1, max_steps=3, **EXACT),
                  base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path / "a", seed=3)
    b = run_stage("b", SFTStage(data=["d"], batch_size=1, grad_accum=8, max_steps=3, **EXACT),
                  base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path / "b", seed=3)
    assert len(_losses(a)) == 3
    assert _losses(a) == pytest.approx(_losses(b), abs=1e-4)
    assert _losses(a)[2] != pytest.approx(_losses(a)[0], abs=1e-3)  # the updates did something


def _job(tmp_path, model, name, rows, **cfg):
    data = tmp_path / "sft.jsonl"
    if not data.exists():
        data.write_text("".join(json.dumps(r) + "\n" for r in rows.to_list()))
    return {"name": name, "type": "sft", "model": str(model), "out": str(tmp_path / name),
            "config": {"data": [str(data)], "batch_size": 2, **EXACT, **cfg}}


def _launch(job_path, env=None):
    return subprocess.Popen([sys.executable, "-m", "medllm.train.launch", str(job_path)],
                            env=env or dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_resume_after_sigkill_matches_uninterrupted(tmp_path, tiny_model_dir, sft_ds):
    from medllm.train.checkpoints import MARKER
    from medllm.train.launch import run_job

    steps = 8
    ref = run_job(_job(tmp_path, tiny_model_dir, "ref", sft_ds, max_steps=steps, save_every=2))
    job = _job(tmp_path, tiny_model_dir, "killed", sft_ds, max_steps=steps, save_every=2)
    job_path = tmp_path / "killed.json"
    job_path.write_text(json.dumps(job))
    proc = _launch(job_path)
    marker = tmp_path / "killed" / "checkpoints" / "checkpoint-4" / MARKER
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists(), "the run finished before it could be killed"
    resumed = run_job({**job, "resume": True})
    assert resumed.metrics["global_step"] == steps
    ref_l, res_l = _losses(ref), _losses(resumed)
    assert len(res_l) == steps  # history restored from the checkpoint + the resumed steps
    assert res_l == pytest.approx(ref_l, abs=1e-4)


def test_two_process_ddp_equals_one_process_double_accum(tmp_path, tiny_model_dir, sft_ds):
    from medllm.train.launch import launch, run_job

    one = run_job(_job(tmp_path, tiny_model_dir, "one", sft_ds, max_steps=3, grad_accum=2))
    ddp_job = _job(tmp_path, tiny_model_dir, "ddp", sft_ds, max_steps=3, grad_accum=1)
    assert launch(ddp_job, nproc=2) == 0
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert ddp["world_size"] == 2
    assert [x[1] for x in ddp["loss_history"]] == pytest.approx(_losses(one), abs=1e-4)
