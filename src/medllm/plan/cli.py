"""CLI: ``medllm plan RECIPE`` — will each stage fit, how much disk, how long — before loading."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from medllm.cli.common import console, fail


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_cmd)


def plan_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key.path=value overrides"),
    gpus: Optional[int] = typer.Option(None, "--gpus", min=1, help="Devices (default: the accelerate config's)."),
    gpu_mem: float = typer.Option(80.0, "--gpu-mem", help="Memory per device, GB."),
    accelerate: Optional[Path] = typer.Option(None, "--accelerate",
                                              help="Accelerate config (default: the one the recipe names)."),
    model_config: Optional[Path] = typer.Option(None, "--model-config", help="config.json giving the shape."),
    peak_tflops: float = typer.Option(989.0, help="Device peak (bf16 dense), TFLOPS; default H100 SXM."),
    mfu: float = typer.Option(0.4, help="Assumed model FLOPs utilisation for the time estimate."),
    cpu: bool = typer.Option(False, "--cpu", help="Estimate a CPU run (auto dtype = fp32, no CUDA runtime)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Estimate per-stage memory, disk and time from the model's config.json only."""
    from medllm.config.loader import RecipeError, load_recipe
    from medllm.plan.estimate import Device, PlanError, estimate_recipe, read_sharding
    from medllm.plan.shapes import read_shape

    try:   # files a cluster recipe names are not here: check the schema only, like validate --no-check-files
        parsed = load_recipe(recipe, overrides or [], check_files=False)
    except RecipeError as exc:
        fail(f"{recipe}: " + "; ".join(str(p) for p in exc.problems))
    try:
        shape = read_shape(parsed.model.name, model_config)
        sharding = read_sharding(accelerate, recipe, gpus)
    except PlanError as exc:
        fail(str(exc))
    name = "CPU" if cpu else ("H100 SXM" if peak_tflops == 989.0 else "device")
    device = Device(f"{name} (peak {peak_tflops:g} TFLOPS)", peak_tflops, mfu, gpu_mem, accelerator=not cpu)
    plan = estimate_recipe(parsed, shape, sharding, device)
    if as_json:
        typer.echo(json.dumps(plan, indent=2))
        return
    _print(plan)


def _print(plan: dict) -> None:
    from rich.table import Table

    m, sh = plan["model"], plan["sharding"]
    console.print(f"[bold]{plan['recipe']}[/]: {m['name']} — {plan['params'] / 1e9:.3g} B params, {plan['dtype']} "
                  f"(shape from {m['source']}); {sh['kind']} x {sh['gpus']} ({sh['source']})", highlight=False)
    from rich import box

    mem = Table(title="memory, GB per device (wts weights, opt optimizer, act activations, lgt logits)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                collapse_padding=True, padding=(0, 1))
    mem.add_column("stage", no_wrap=True)
    for col in ("method", "b×seq", "wts", "grad", "opt", "act", "lgt", "total", "fit"):
        mem.add_column(col, no_wrap=True, justify="right")
    cost = Table(title="disk and time", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                collapse_padding=True, padding=(0, 1))
    cost.add_column("stage", no_wrap=True)
    for col in ("disk GB", "tokens/s", "tokens/step", "s/step", "hours"):
        cost.add_column(col, no_wrap=True, justify="right")
    for s in plan["stages"]:
        g = s["memory_gb"]
        mem.add_row(s["stage"], s["method"], f"{s['micro_batch']}×{s['seq_len']}",
                    *(f"{g[k]:.1f}" for k in ("weights", "gradients", "optimizer", "activations", "logits")),
                    f"{s['total_gb']:.1f}", "[green]yes[/]" if s["fits"] else "[red]NO[/]")
        cost.add_row(s["stage"], f"{sum(s['disk_gb'].values()):.1f}", f"{s['tokens_per_s']:,.0f}",
                     f"{s['tokens_per_step']:,}", f"{s['seconds_per_step']:.2f}",
                     "-" if s["total_hours"] is None else f"{s['total_hours']:.1f}")
    console.print(mem)
    console.print(cost)
    for s in plan["stages"]:
        if s["warnings"]:
            console.print(f"[yellow]warning[/] {s['warnings'][0]}; try one of:", highlight=False)
            for w in s["warnings"][1:]:
                console.print(f"  - {w}", highlight=False)
    console.print(f"[dim]{plan['assumptions']}[/]", highlight=False)
