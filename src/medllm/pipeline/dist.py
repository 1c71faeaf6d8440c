"""The pipeline under several processes (``accelerate launch -m medllm run`` or ``--nproc``).

Every process runs the training stages (the Trainer shards each batch); the main process
alone prepares data, writes state and provenance, evaluates, answers the examples and
writes the report. :meth:`Ranks.on_main` is the only synchronisation point: the main
process runs a function, then every process receives its result (or its error) — so a
non-zero rank can never read a file before rank 0 has written it, and a failure on rank 0
stops every rank instead of leaving them waiting at a barrier.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


class MainProcessFailed(RuntimeError):
    pass


class Ranks:
    def __init__(self):
        self.n = world_size()
        self.rank = int(os.environ.get("RANK", "0"))
        if self.n > 1:
            from accelerate import PartialState

            from medllm.models.hardware import accelerator

            # rank 0 may prepare a large corpus or save an 8B model while the others wait
            hours = float(os.environ.get("MEDLLM_DIST_TIMEOUT_HOURS", "6"))
            # without cpu=True accelerate sees no accelerator and falls back to ONE process
            # (every rank then believes it is the main one and reads files before rank 0 wrote them)
            state = PartialState(cpu=accelerator() == "cpu", timeout=timedelta(hours=hours))
            if state.num_processes != self.n:
                raise RuntimeError(f"WORLD_SIZE={self.n} but accelerate set up {state.num_processes} "
                                   f"process(es) ({state.distributed_type}); refusing to run unsynchronised")
            self.rank, self.n = state.process_index, state.num_processes

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def on_main(self, fn):
        """Run ``fn()`` on the main process; every process returns its (picklable) result."""
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001  (re-raised below, on every rank)
                error = exc
        if self.n > 1:
            import torch.distributed as dist

            box = [(result, None if error is None else f"{type(error).__name__}: {error}")]
            dist.broadcast_object_list(box, src=0)
            result, message = box[0]
            if message and not self.is_main:
                raise MainProcessFailed(f"the main process failed: {message}")
        if error is not None:
            raise error
        return result


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(args: list[str], nproc: int, accelerate_config: Path | None = None) -> list[str]:
    """``accelerate launch`` re-running ``medllm run ARGS`` in ``nproc`` processes."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--main_process_port", str(_free_port())]
    if accelerate_config:
        cmd += ["--config_file", str(accelerate_config)]
        if nproc > 1:
            cmd += ["--num_processes", str(nproc)]
    else:
        # torch.distributed.run spawns the processes; without a GPU they train over gloo
        cmd += ["--num_processes", str(nproc), "--num_machines", "1", "--multi_gpu"]
    return cmd + ["-m", "medllm", "run", *args]


def relaunch(args: list[str], nproc: int, accelerate_config: Path | None = None) -> int:
    threads = os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // max(1, nproc))))
    env = dict(os.environ, OMP_NUM_THREADS=threads)
    return subprocess.call(launch_command(args, nproc, accelerate_config), env=env)
