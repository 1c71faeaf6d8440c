"""The ``medllm`` command. Each pipeline area registers its own commands
(``medllm.<area>.cli.register``); heavy imports happen inside commands only."""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

import medllm  # noqa: F401  (offline guard)
from medllm.cli.common import console, fail, setup_logging

app = typer.Typer(help="medllm: build, evaluate and privately deploy a medical LLM — offline.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
models_app = typer.Typer(help="Model registry: the embedded default, tiny test models, local folders, GGUF.",
                         no_args_is_help=True)
runs_app = typer.Typer(help="Run folders.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(runs_app, name="runs")


def run() -> None:
    """The ``medllm`` console command: glibc malloc tuned for large tensors (``medllm.allocator``),
    then the app. Tests call ``app`` directly and never re-execute."""
    import sys

    from medllm.allocator import reexec_with_tuned_malloc

    reexec_with_tuned_malloc(sys.argv[1:])
    app(prog_name="medllm")


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars (CI).")) -> None:
    import os

    from medllm.paths import apply_quiet

    if quiet:
        os.environ["MEDLLM_QUIET"] = "1"
    apply_quiet()
    setup_logging(verbose)


# ------------------------------------------------------------------ models
@models_app.command("list")
def models_list() -> None:
    """Models medllm knows by name (any local HF folder or .gguf path works too)."""
    from medllm.models.registry import list_models

    table = Table("name", "kind", "local", "description")
    for row in list_models():
        table.add_row(row["name"], row["kind"], "yes" if row["local"] else "no", row["description"])
    console.print(table)


@models_app.command("pull")
def models_pull(model: str = typer.Argument("smollm2-135m-instruct")) -> None:
    """Materialise a model into MEDLLM_HOME (converting GGUF to safetensors once)."""
    from medllm.models.registry import ModelNotFound, ensure_local

    try:
        path = ensure_local(model)
    except ModelNotFound as exc:
        fail(str(exc))
    console.print(f"{model} ready at {path}")


@models_app.command("info")
def models_info(model: str = typer.Argument("smollm2-135m-instruct"),
                verify: bool = typer.Option(False, help="Re-hash every file against the manifest.")) -> None:
    """Show a model's architecture, location and manifest."""
    from medllm.models.convert import verify_manifest
    from medllm.models.registry import ModelNotFound, model_info

    try:
        info = model_info(model)
    except ModelNotFound as exc:
        fail(str(exc))
    if verify and "path" in info:
        info["verify_problems"] = verify_manifest(info["path"])
    if "manifest" in info:
        info["manifest"] = {"source": info["manifest"]["source"], "files": len(info["manifest"]["files"])}
    console.print_json(json.dumps(info, default=str))


# ------------------------------------------------------------------ validate
@app.command()
def validate(recipe: Path = typer.Argument(..., help="Recipe YAML."),
             overrides: Optional[list[str]] = typer.Argument(None, help="key.path=value overrides"),
             check_files: bool = typer.Option(True, "--check-files/--no-check-files",
                                              help="Also require every data/model file to exist here "
                                                   "(turn off to check a cluster recipe on a laptop).")) -> None:
    """Check a recipe completely (types, unknown keys, files, combinations) without loading a model."""
    from medllm.config.loader import RecipeError, check_recipe

    try:
        parsed, problems = check_recipe(recipe, overrides or [], check_files=check_files)
    except RecipeError as exc:
        problems = exc.problems
    if problems:
        typer.secho(f"{recipe}: {len(problems)} problem(s)", fg="red", bold=True)
        for p in problems:
            typer.echo(f"  - {p}")
        raise typer.Exit(1)
    typer.secho(f"{recipe}: OK — {len(parsed.stages)} stage(s): {', '.join(parsed.stages) or 'none'}", fg="green")


# ------------------------------------------------------------------ runs
@runs_app.command("list")
def runs_list(root: Path = typer.Option(Path("runs"), help="Folder holding run folders.")) -> None:
    from medllm.runs import list_runs

    table = Table("name", "created", "stages", "git")
    for r in list_runs(root):
        stages = ", ".join(f"{k}:{v}" for k, v in r["stages"].items()) or "-"
        table.add_row(r["name"], r["created"] or "?", stages, (r["git"] or "?")[:10])
    console.print(table)


@runs_app.command("show")
def runs_show(run: Path = typer.Argument(..., help="Run folder.")) -> None:
    from medllm.runs import RunFolder, load_run_summary

    if not (run / "recipe.yaml").is_file():
        fail(f"{run} is not a run folder (no recipe.yaml)")
    summary = load_run_summary(run)
    summary["state"] = RunFolder(run).state()
    env = run / "environment.json"
    if env.is_file():
        summary["versions"] = json.loads(env.read_text()).get("versions")
    console.print_json(json.dumps(summary, default=str))


# ------------------------------------------------------------------ areas
AREAS = ("medllm.data.cli", "medllm.train.cli", "medllm.eval.cli", "medllm.serve.cli", "medllm.pipeline.cli",
         "medllm.export.cli", "medllm.studio.cli", "medllm.plan.cli")
for _mod in AREAS:
    try:
        module = importlib.import_module(_mod)
    except ModuleNotFoundError as exc:
        if exc.name is None or not _mod.startswith(exc.name):  # a real import error inside the area
            raise
        continue
    module.register(app)


if __name__ == "__main__":
    app()
