"""Background runs: ``medllm run`` as its own process (``start_new_session``, so it survives
the browser and the studio closing), one at a time unless a launch asks to run alongside —
on a 2-core CPU two trainings together are each slower than one after the other.

Stop sends SIGTERM to the run's process group (the pipeline marks the running step
``interrupted``); Resume starts the same command again (the pipeline skips steps already
``done`` and continues a stage from its last complete checkpoint)."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from medllm.io import atomic_write_json
from medllm.studio.runs_view import JOB_FILE, LOG_FILE, pid_alive, read_json


class LaunchError(ValueError):
    pass


@dataclass
class Job:
    name: str
    argv: list[str]              # after ``medllm``: ["run", recipe, overrides..., "--root", R, "--name", N]
    parallel: bool = False
    proc: subprocess.Popen | None = None
    queued_at: float = field(default_factory=time.time)


def display_command(argv: list[str]) -> str:
    return "medllm " + " ".join(shlex.quote(a) for a in argv)


class Launcher:
    def __init__(self, runs_dir: Path, *, poll_s: float = 0.5):
        self.runs_dir = Path(runs_dir)
        self.queue: list[Job] = []
        self.running: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="studio-launcher", daemon=True)
        self.poll_s = poll_s
        self._thread.start()

    # ---------------------------------------------------------------- queue
    def submit(self, name: str, argv: list[str], *, parallel: bool = False) -> str:
        with self._lock:
            if name in self.running or self._external_running(name) or any(j.name == name for j in self.queue):
                raise LaunchError(f"run {name!r} is already running or queued")
            self.queue.append(Job(name, argv, parallel))
            (self.runs_dir / name).mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.runs_dir / name / JOB_FILE,
                              {"argv": argv, "display": display_command(argv), "pid": None,
                               "queued": time.time(), "parallel": parallel})
        self._start_ready()
        return "running" if name in self.running else "queued"

    def is_queued(self, name: str) -> bool:
        return any(j.name == name for j in self.queue)

    def position(self, name: str) -> int | None:
        names = [j.name for j in self.queue]
        return names.index(name) + 1 if name in names else None

    def _external_running(self, name: str) -> bool:
        job = read_json(self.runs_dir / name / JOB_FILE) or {}
        return pid_alive(job.get("pid"))

    def _busy(self) -> bool:
        if any(j.proc and j.proc.poll() is None for j in self.running.values()):
            return True
        # a run launched by an earlier studio process still going counts too
        return any(pid_alive((read_json(p / JOB_FILE) or {}).get("pid"))
                   for p in self.runs_dir.iterdir() if p.is_dir() and p.name not in self.running) \
            if self.runs_dir.is_dir() else False

    def _start_ready(self) -> None:
        with self._lock:
            for name, job in list(self.running.items()):
                if job.proc is not None and job.proc.poll() is not None:
                    del self.running[name]
            while self.queue and (self.queue[0].parallel or not self._busy()):
                self._start(self.queue.pop(0))

    def _start(self, job: Job) -> None:
        run = self.runs_dir / job.name
        run.mkdir(parents=True, exist_ok=True)
        log = open(run / LOG_FILE, "ab")
        log.write(f"\n$ {display_command(job.argv)}\n".encode())
        log.flush()
        env = {**os.environ, "MEDLLM_QUIET": "1", "PYTHONUNBUFFERED": "1"}
        job.proc = subprocess.Popen([sys.executable, "-m", "medllm.cli.main", *job.argv], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)
        log.close()
        self.running[job.name] = job
        info = read_json(run / JOB_FILE) or {}
        info.update(pid=job.proc.pid, started=time.time())
        atomic_write_json(run / JOB_FILE, info)

    def _pump(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self._start_ready()
            except Exception:  # a bad entry must not stop the queue for the others
                import logging

                logging.getLogger(__name__).exception("launcher")

    # ---------------------------------------------------------------- control
    def stop(self, name: str) -> str:
        with self._lock:
            for j in self.queue:
                if j.name == name:
                    self.queue.remove(j)
                    return "removed from the queue"
        job = read_json(self.runs_dir / name / JOB_FILE) or {}
        pid = (self.running[name].proc.pid if name in self.running and self.running[name].proc else job.get("pid"))
        if not pid_alive(pid):
            raise LaunchError(f"run {name!r} is not running")
        os.killpg(pid, signal.SIGTERM)    # the whole session: the pipeline and anything it started
        return "stopping"

    def resume(self, name: str, *, parallel: bool = False) -> str:
        job = read_json(self.runs_dir / name / JOB_FILE)
        run = self.runs_dir / name
        if job and job.get("argv"):
            argv = job["argv"]
        elif (run / "recipe.yaml").is_file():   # a run started from the terminal
            argv = ["run", str(run / "recipe.yaml"), "--root", str(self.runs_dir), "--name", name]
        else:
            raise LaunchError(f"{run}: no recipe.yaml to resume from")
        return self.submit(name, argv, parallel=parallel)

    def close(self, *, wait_s: float = 0) -> None:
        """Stop the queue thread. Running pipelines keep going (they are their own sessions)."""
        self._stop.set()
        self._thread.join(timeout=5)
        deadline = time.time() + wait_s
        for job in self.running.values():
            if job.proc is not None:
                while job.proc.poll() is None and time.time() < deadline:
                    time.sleep(0.2)
