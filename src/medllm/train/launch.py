"""Running a stage from the command line, in one process or several through accelerate.

A job is a small JSON file (stage config + model + data + output folder); ``python -m
medllm.train.launch JOB`` runs it. ``--nproc N`` starts N copies with ``accelerate launch``
(gloo DDP on CPU, NCCL on GPUs); each process trains on its shard of every batch and the
Trainer averages gradients."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def build_stage(stage_type: str, config: dict):
    from pydantic import TypeAdapter

    from medllm.config.train import Stage

    return TypeAdapter(Stage).validate_python({**config, "type": stage_type})


def run_job(job: dict):
    from medllm.train.stage import run_stage

    stage = build_stage(job["type"], job["config"])
    return run_stage(job["name"], stage, base_model=job["model"], datasets={}, out_dir=Path(job["out"]),
                     resume=job.get("resume"), seed=job.get("seed"),
                     reward_model=Path(job["reward_model"]) if job.get("reward_model") else None)


def accelerate_command(job_file: Path, nproc: int, *, config_file: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--main_process_port", str(_free_port())]
    if config_file:  # the file decides the process count unless --nproc says otherwise
        return cmd + ["--config_file", str(config_file)] + (["--num_processes", str(nproc)] if nproc > 1 else []) \
            + ["-m", "medllm.train.launch", str(job_file)]
    cmd += ["--num_processes", str(nproc), "--num_machines", "1"]
    # torch.distributed.run spawns the processes; with no GPU the Trainer runs them on CPU over gloo
    # (accelerate's --cpu flag would fall back to a single process)
    cmd += ["--multi_gpu"]
    return cmd + ["-m", "medllm.train.launch", str(job_file)]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(job: dict, *, nproc: int = 1, accelerate_config: Path | None = None) -> int:
    """Run ``job`` here (nproc 1) or through ``accelerate launch``; returns the exit code."""
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    job_file = out / "job.json"
    from medllm.io import atomic_write_json

    atomic_write_json(job_file, job)
    if nproc <= 1 and accelerate_config is None:
        run_job(job)
        return 0
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // nproc))))
    return subprocess.call(accelerate_command(job_file, nproc, config_file=accelerate_config), env=env)


if __name__ == "__main__":
    import medllm  # noqa: F401  (offline guard)

    run_job(json.loads(Path(sys.argv[1]).read_text()))
