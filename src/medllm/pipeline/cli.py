"""`medllm run RECIPE [overrides] [--from STEP]`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(recipe: Path = typer.Argument(..., help="Recipe YAML (see configs/)."),
                overrides: Optional[list[str]] = typer.Argument(None, help="key.path=value overrides"),
                from_step: Optional[str] = typer.Option(None, "--from", help="Re-run from this step (data, a stage name, eval, examples, report)."),
                name: Optional[str] = typer.Option(None, help="Run folder name (default: the recipe's name)."),
                root: Optional[Path] = typer.Option(None, help="Folder holding run folders (default: recipe output_dir).")) -> None:
        """Run a whole recipe end to end; re-running continues where it stopped."""
        from medllm.cli.common import console, fail
        from medllm.config.loader import RecipeError
        from medllm.pipeline import run_recipe

        try:
            run = run_recipe(recipe, overrides or [], from_stage=from_step, root=root, name=name)
        except RecipeError as exc:
            fail(str(exc))
        console.print(f"[bold green]done[/] — run folder: {run.path}", highlight=False)
        console.print(f"report: {run.path / 'report.html'}", highlight=False)
        console.print(f"serve it: medllm serve {run.path}    chat: medllm chat {run.path}", highlight=False)
