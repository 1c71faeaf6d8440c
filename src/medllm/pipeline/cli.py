"""`medllm run RECIPE [overrides] [--from STEP]`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(recipe: Path = typer.Argument(..., help="Recipe YAML (see configs/)."),
                overrides: Optional[list[str]] = typer.Argument(None, help="key.path=value overrides"),
                from_step: Optional[str] = typer.Option(None, "--from", help="Re-run from this step (data, a stage name, eval, examples, report)."),
                name: Optional[str] = typer.Option(None, help="Run folder name (default: the recipe's name)."),
                root: Optional[Path] = typer.Option(None, help="Folder holding run folders (default: recipe output_dir)."),
                rerun_changed: bool = typer.Option(False, "--rerun-changed",
                                                   help="Re-run the steps whose fingerprint changed, and what depends on them."),
                nproc: int = typer.Option(1, "--nproc", help="Processes (accelerate launch; gloo on CPU)."),
                accelerate_config: Optional[Path] = typer.Option(None, "--accelerate-config",
                                                                 help="accelerate config file for the launch.")) -> None:
        """Run a whole recipe end to end; re-running continues where it stopped."""
        from medllm.cli.common import console, fail
        from medllm.config.loader import RecipeError
        from medllm.pipeline import run_recipe
        from medllm.pipeline.dist import relaunch, world_size

        if (nproc > 1 or accelerate_config) and world_size() == 1:  # become N processes of this command
            args = [str(recipe), *(overrides or [])] + (["--from", from_step] if from_step else []) \
                + (["--name", name] if name else []) + (["--root", str(root)] if root else []) \
                + (["--rerun-changed"] if rerun_changed else [])
            raise typer.Exit(relaunch(args, nproc, accelerate_config))
        try:
            run = run_recipe(recipe, overrides or [], from_stage=from_step, root=root, name=name,
                             rerun_changed=rerun_changed)
        except RecipeError as exc:
            fail(str(exc))
        if world_size() > 1 and os.environ.get("RANK", "0") != "0":
            return  # a non-main rank: the main process prints the summary
        console.print(f"[bold green]done[/] — run folder: {run.path}", highlight=False)
        console.print(f"report: {run.path / 'report.html'}", highlight=False)
        console.print(f"serve it: medllm serve {run.path}    chat: medllm chat {run.path}", highlight=False)
