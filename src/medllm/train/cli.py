"""``medllm train STAGE``: one training stage from the command line."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from medllm.config.train import STAGE_TYPES


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        stage: str = typer.Argument(..., help=f"Stage type: {', '.join(STAGE_TYPES)}."),
        overrides: Optional[list[str]] = typer.Argument(None, help="key=value settings, e.g. lr=1e-4 adapter.r=8"),
        model: str = typer.Option("smollm2-135m-instruct", "--model", "-m", help="Base model (registry name or folder)."),
        data: list[str] = typer.Option([], "--data", "-d", help="Data file/folder or builtin:demo/<kind> (repeatable)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default runs/train-<stage>)."),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="Stage settings YAML (a stage mapping)."),
        nproc: int = typer.Option(1, "--nproc", help="Processes (DDP through accelerate; gloo on CPU)."),
        resume: bool = typer.Option(False, "--resume", help="Continue from the last complete checkpoint."),
        reward_model: Optional[Path] = typer.Option(None, "--reward-model", help="Reward model folder (rejection_sampling)."),
        accelerate_config: Optional[Path] = typer.Option(None, "--accelerate-config",
                                                         help="accelerate config (e.g. configs/accelerate/zero2.yaml)."),
    ) -> None:
        """Train one stage; writes merged/, adapter/, metrics.json, loss_curve.png, tensorboard/, checkpoints/."""
        from medllm.cli.common import console, fail
        from medllm.config.loader import apply_overrides, read_yaml

        if stage not in STAGE_TYPES:
            fail(f"unknown stage '{stage}' (have: {', '.join(STAGE_TYPES)})")
        raw = read_yaml(config) if config else {}
        raw.pop("type", None)
        if data:
            raw["data"] = list(data)
        raw, problems = apply_overrides(raw, overrides or [])
        if problems:
            fail("; ".join(str(p) for p in problems))
        from pydantic import ValidationError

        from medllm.train.launch import build_stage, launch

        try:
            build_stage(stage, raw)
        except ValidationError as exc:
            fail("\n".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors()))
        out = out or Path("runs") / f"train-{stage}"
        job = {"name": stage, "type": stage, "config": raw, "model": model, "out": str(out.resolve()),
               "resume": True if resume else False, "reward_model": str(reward_model) if reward_model else None}
        try:
            code = launch(job, nproc=nproc, accelerate_config=accelerate_config)
        except (ValueError, FileNotFoundError) as exc:
            fail(str(exc))
        if code:
            fail(f"training exited with status {code}", code)
        console.print(f"[green]{stage} done[/] -> {out / 'merged'}", highlight=False)
