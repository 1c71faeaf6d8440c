"""`medllm run RECIPE [overrides] [--from STEP]`."""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Optional

import typer


class Interrupted(BaseException):
    """SIGTERM (``medllm studio``'s Stop, ``kill``, a scheduler's time limit) asked the run to end.
    A BaseException so no ``except Exception`` in a library swallows it."""


def _raise_interrupted(signum, frame):
    raise Interrupted(f"stopped by signal {signal.Signals(signum).name}")


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
        from medllm.config.loader import RecipeError, load_recipe
        from medllm.pipeline import run_recipe
        from medllm.pipeline.dist import relaunch, world_size
        from medllm.runs import RunFolder

        if (nproc > 1 or accelerate_config) and world_size() == 1:  # become N processes of this command
            args = [str(recipe), *(overrides or [])] + (["--from", from_step] if from_step else []) \
                + (["--name", name] if name else []) + (["--root", str(root)] if root else []) \
                + (["--rerun-changed"] if rerun_changed else [])
            raise typer.Exit(relaunch(args, nproc, accelerate_config))
        try:
            parsed = load_recipe(recipe, overrides or [])
        except RecipeError as exc:
            fail(str(exc))
        folder = RunFolder(Path(root or parsed.output_dir) / (name or parsed.name))
        # SIGTERM ends the run cleanly: the running step is marked "interrupted" (the re-run
        # continues it, from its last complete checkpoint for a training stage), exit code 143.
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
        try:
            run = run_recipe(recipe, overrides or [], recipe=parsed, from_stage=from_step, root=root, name=name,
                             rerun_changed=rerun_changed)
        except RecipeError as exc:
            fail(str(exc))
        except (Interrupted, KeyboardInterrupt) as exc:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)   # a second signal must not cut the bookkeeping
            steps = folder.mark_interrupted(str(exc) or type(exc).__name__)
            console.print(f"[yellow]interrupted[/] ({', '.join(steps) or 'between steps'}) — run the same "
                          f"command again to continue: {folder.path}", highlight=False)
            raise typer.Exit(143 if isinstance(exc, Interrupted) else 130) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
        if world_size() > 1 and os.environ.get("RANK", "0") != "0":
            return  # a non-main rank: the main process prints the summary
        console.print(f"[bold green]done[/] — run folder: {run.path}", highlight=False)
        console.print(f"report: {run.path / 'report.html'}", highlight=False)
        console.print(f"serve it: medllm serve {run.path}    chat: medllm chat {run.path}", highlight=False)
