"""``runs/<name>/``: recipe.yaml (resolved), environment.json, inputs.json, state.json, stages/<step>/.

``state.json`` records each pipeline step's status (running / done / failed), its duration,
its outputs and its fingerprint (``medllm.runs.fingerprint``); the pipeline skips steps
already ``done`` with an unchanged fingerprint, so re-running continues an interrupted run. Every write is atomic (temp file + rename): a kill leaves the last good state.
"""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import yaml

from medllm.io import atomic_write_json, atomic_write_text


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    # ---------------------------------------------------------------- creation
    @classmethod
    def create(cls, recipe, *, root: str | Path | None = None, name: str | None = None,
               recipe_path: str | Path | None = None) -> "RunFolder":
        """Make (or reopen) the run folder and record the recipe and provenance. Reopening a
        folder keeps its state, so the same command continues where it stopped."""
        run = cls.open(recipe, root=root, name=name)
        run.write_provenance(recipe, recipe_path=recipe_path)
        return run

    @classmethod
    def open(cls, recipe, *, root: str | Path | None = None, name: str | None = None) -> "RunFolder":
        """Make (or reopen) the folder without touching its provenance: the pipeline first
        checks the recorded step fingerprints, then writes recipe.yaml / inputs.json, so they
        never describe a recipe whose outputs are not the ones beside them."""
        run = cls(Path(root or recipe.output_dir) / (name or recipe.name))
        run.path.mkdir(parents=True, exist_ok=True)
        (run.path / "stages").mkdir(exist_ok=True)
        if not (run.path / "state.json").exists():
            atomic_write_json(run.path / "state.json", {"stages": {}})
        return run

    def write_provenance(self, recipe, *, recipe_path: str | Path | None = None) -> None:
        from medllm.models.hardware import machine_info
        from medllm.runs.provenance import git_revision, hash_inputs, package_versions, recipe_inputs

        dumped = recipe.model_dump(mode="json")
        atomic_write_text(self.path / "recipe.yaml", yaml.safe_dump(dumped, sort_keys=False, allow_unicode=True))
        env = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "recipe_path": str(recipe_path) if recipe_path else None,
               "versions": package_versions(), "git": git_revision(), "machine": machine_info()}
        old = self._read("environment.json")
        if old.get("created"):
            env["first_created"] = old.get("first_created", old["created"])
        atomic_write_json(self.path / "environment.json", env)
        atomic_write_json(self.path / "inputs.json", hash_inputs(recipe_inputs(recipe)))

    # ---------------------------------------------------------------- reading
    def _read(self, name: str) -> dict:
        p = self.path / name
        return json.loads(p.read_text()) if p.is_file() else {}

    def recipe(self):
        from medllm.config.loader import load_recipe

        # files are checked when the run starts; a finished run stays readable after they move
        return load_recipe(self.path / "recipe.yaml", check_files=False)

    def state(self) -> dict:
        return self._read("state.json") or {"stages": {}}

    def stage_state(self, step: str) -> dict:
        return self.state()["stages"].get(step, {})

    def is_done(self, step: str) -> bool:
        return self.stage_state(step).get("status") == "done"

    def stage_dir(self, step: str) -> Path:
        d = self.path / "stages" / step
        d.mkdir(parents=True, exist_ok=True)
        return d

    # ---------------------------------------------------------------- writing
    def mark(self, step: str, status: str, **info) -> None:
        """Record a step's status; ``done``/``failed`` also record seconds since ``running``."""
        state = self.state()
        entry = state["stages"].get(step, {})
        now = time.time()
        if status == "running":
            entry = {"status": "running", "started": now, **info}
        else:
            entry.update(info)
            entry["status"] = status
            entry["finished"] = now
            entry["seconds"] = round(now - entry.get("started", now), 2)
            # the process's peak so far: the step that raises it is the one that needs the memory
            entry["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        state["stages"][step] = entry
        atomic_write_json(self.path / "state.json", state)

    def mark_interrupted(self, reason: str) -> list[str]:
        """After SIGTERM/Ctrl-C: every step left ``running`` (or just marked ``failed`` by the
        interruption itself) becomes ``interrupted``; returns their names."""
        state = self.state()
        hit = []
        for step, entry in state["stages"].items():
            if entry.get("status") == "running" or (
                    entry.get("status") == "failed" and str(entry.get("error", "")).startswith(("Interrupted", "KeyboardInterrupt"))):
                hit.append(step)
                now = time.time()
                entry.update(status="interrupted", error=reason, finished=now,
                             seconds=round(now - entry.get("started", now), 2))
        if hit:
            atomic_write_json(self.path / "state.json", state)
        return hit

    def clear_step(self, step: str) -> None:
        """Forget ``step`` and delete its outputs (stages/<step>/: models, checkpoints, eval
        caches), so it really runs again instead of resuming an old checkpoint."""
        import shutil

        state = self.state()
        state["stages"].pop(step, None)
        atomic_write_json(self.path / "state.json", state)
        folder = self.path / "stages" / step
        if folder.is_dir():
            shutil.rmtree(folder)

    def reset_from(self, step: str, order: list[str]) -> None:
        """Forget ``step`` and every later step and delete their outputs, so they run again."""
        for s in order[order.index(step):]:
            self.clear_step(s)


def load_run_summary(path: str | Path) -> dict:
    run = RunFolder(path)
    env = run._read("environment.json")
    return {"name": run.path.name, "path": str(run.path), "created": env.get("first_created", env.get("created")),
            "git": (env.get("git") or {}).get("revision"),
            "stages": {k: v.get("status") for k, v in run.state()["stages"].items()}}


def list_runs(root: str | Path = "runs") -> list[dict]:
    root = Path(root)
    if not root.is_dir():
        return []
    return [load_run_summary(p) for p in sorted(root.iterdir()) if (p / "recipe.yaml").is_file()]
