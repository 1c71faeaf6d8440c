"""Checkpoints that are complete or ignored.

HF Trainer writes a checkpoint folder file by file; a kill in the middle leaves a folder
that looks like the newest one. We add a marker written atomically *after* Trainer has
written everything, and resume only from folders that carry it."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from medllm.io import atomic_write_json

MARKER = "medllm_complete.json"
_NUM = re.compile(r"^checkpoint-(\d+)$")


class CompleteCheckpointMixin:
    """Mixed into every stage's Trainer class (before the HF class)."""

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
            atomic_write_json(folder / MARKER, {"global_step": self.state.global_step})


def complete_checkpoints(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NUM.match(p.name)) and (p / MARKER).is_file()]
    return [p for _, p in sorted(found)]


def last_complete_checkpoint(folder: Path) -> Path | None:
    done = complete_checkpoints(folder)
    return done[-1] if done else None


def drop_incomplete(folder: Path) -> list[str]:
    """Remove checkpoint folders a killed run left half-written; returns their names."""
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if _NUM.match(p.name) and not (p / MARKER).is_file():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
    return removed


def mark_best(folder: Path, best: str | None) -> None:
    if best:
        atomic_write_json(folder / "BEST.json", {"checkpoint": Path(best).name, "by": "eval_loss"})
