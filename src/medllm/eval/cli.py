"""``medllm eval run|compare|pairwise|safety|list-tasks``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from medllm.cli.common import console, fail

eval_app = typer.Typer(help="Evaluate models: medical benchmark tasks, safety probes, comparisons.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


@eval_app.command("list-tasks")
def list_tasks_cmd() -> None:
    """Built-in tasks, their modes, metrics and the public file formats each reads."""
    import textwrap

    from medllm.eval import list_tasks
    from medllm.eval.loaders import FORMATS

    # one block per task rather than a wide table: stays readable in an 80-column terminal
    width = 80

    def block(label: str, text: str) -> None:
        for i, line in enumerate(textwrap.wrap(text, width - 10)):
            console.print(f"  {label:<8}" if i == 0 else " " * 10, line, sep="", highlight=False, soft_wrap=True)

    for t in list_tasks():
        console.print(f"[bold]{t['name']}[/]  ({t['type']}; modes: {', '.join(t['modes'])})",
                      highlight=False, soft_wrap=True)
        block("metrics", ", ".join(t["metrics"]))
        for i, form in enumerate(FORMATS.get(t["format"], [t["format"]])):
            block("reads" if i == 0 else "", form)
        block("fields", t["data"])
        if t.get("default_path"):
            block("usual", t["default_path"])
        console.print("")


@eval_app.command("run")
def run_cmd(model: str = typer.Argument("smollm2-135m-instruct", help="Model name/folder/GGUF or http://host:port/v1"),
            task: list[str] = typer.Option(..., "--task", "-t", help="Built-in task or task YAML (repeatable)"),
            path: list[str] = typer.Option([], "--path", "-p", help="Data file per --task, in order"),
            mode: str = typer.Option("loglik", help="loglik | generate (tasks without loglik use generate)"),
            shots: int = typer.Option(0, help="k-shot exemplars (seeded, from the task's dev file)"),
            limit: Optional[int] = typer.Option(None, help="N examples per task (see --sample)"),
            sample: str = typer.Option("first", help="with --limit: first (lm-eval --limit) | random (seeded)"),
            out: Path = typer.Option(Path("runs/eval"), "--out", "-o"),
            adapter: Optional[Path] = typer.Option(None, help="PEFT adapter folder"),
            batch_size: int = typer.Option(8), max_new_tokens: int = typer.Option(128),
            generate_batch_size: Optional[int] = typer.Option(None, help="Rows per generation batch "
                                                              "(default: --batch-size)"),
            seed: int = typer.Option(1234), dtype: str = typer.Option("auto", help="auto | bfloat16 | float32"),
            safety: bool = typer.Option(False, help="Also run the built-in safety probes"),
            judge: Optional[str] = typer.Option(None, help="Judge model/endpoint for diagnosis tasks"),
            api_model: Optional[str] = typer.Option(None, help="Model name at an OpenAI-compatible endpoint"),
            bertscore_model: Optional[str] = typer.Option(None, help="Local encoder folder for BERTScore"),
            forgetting_domain: Optional[Path] = typer.Option(None, help="Held-out domain text (.txt/.jsonl)"),
            forgetting_general: Optional[Path] = typer.Option(None, help="Held-out general text (.txt/.jsonl)"),
            label: Optional[str] = typer.Option(None)) -> None:
    """Score MODEL on tasks; writes results.json, predictions, report.md/html into --out (resumable)."""
    from medllm.config.eval import EvalTask
    from medllm.eval import evaluate
    from medllm.eval.backends import BackendError, make_backend
    from medllm.eval.loaders import TaskDataError
    from medllm.eval.prompts import PromptError
    from medllm.eval.spec import TaskSpecError

    if path and len(path) != len(task):
        fail(f"give one --path per --task ({len(task)} tasks, {len(path)} paths) or none")
    if bool(forgetting_domain) != bool(forgetting_general):
        fail("the forgetting probe needs both --forgetting-domain and --forgetting-general")
    if sample not in ("first", "random"):
        fail(f"--sample must be 'first' or 'random', not {sample!r}")
    tasks = [EvalTask(task=t, path=(path[i] if path else None), mode=mode, shots=shots, limit=limit, sample=sample)
             for i, t in enumerate(task)]
    forgetting = {"domain": forgetting_domain, "general": forgetting_general} if forgetting_domain else None
    try:
        judge_backend = make_backend(judge) if judge else None
        res = evaluate(model, tasks, out, adapter=adapter, batch_size=batch_size, max_new_tokens=max_new_tokens,
                       seed=seed, label=label, safety=safety, forgetting=forgetting, dtype=dtype,
                       judge=judge_backend, api_model=api_model, bertscore_model=bertscore_model,
                       generate_batch_size=generate_batch_size)
    except (TaskDataError, TaskSpecError, PromptError, BackendError) as exc:
        fail(str(exc))
    console.print((out / "report.md").read_text(), highlight=False)
    console.print(f"[green]wrote[/] {out}/results.json, report.md, report.html", highlight=False)
    _ = res


@eval_app.command("safety")
def safety_cmd(model: str = typer.Argument("smollm2-135m-instruct"),
               out: Path = typer.Option(Path("runs/eval-safety"), "--out", "-o"),
               adapter: Optional[Path] = typer.Option(None), max_new_tokens: int = typer.Option(128)) -> None:
    """Only the built-in safety probes (emergencies, dangerous doses, out-of-scope requests)."""
    from medllm.eval import safety_probes

    res = safety_probes(model, out, adapter=adapter, max_new_tokens=max_new_tokens)
    console.print_json(json.dumps({k: res[k] for k in ("n", "metrics", "by_category")}))


@eval_app.command("compare")
def compare_cmd(run_a: Path = typer.Argument(..., help="results.json or eval folder (before)"),
                run_b: Path = typer.Argument(..., help="results.json or eval folder (after)"),
                out: Path = typer.Option(Path("runs/compare"), "--out", "-o")) -> None:
    """Before/after table with deltas and CI overlap; writes compare.json/.md/.html."""
    from medllm.eval import compare

    for p in (run_a, run_b):
        if not (p / "results.json" if p.is_dir() else p).is_file():
            fail(f"{p}: no results.json (run `medllm eval run` first)")
    compare(run_a, run_b, out)
    console.print((out / "compare.md").read_text(), highlight=False)


@eval_app.command("pairwise")
def pairwise_cmd(model_a: str = typer.Argument(...), model_b: str = typer.Argument(...),
                 questions: Path = typer.Option(..., help="JSONL with 'question' or a text file, one per line"),
                 judge: str = typer.Option(..., help="Judge: model name/folder or OpenAI-compatible URL"),
                 out: Path = typer.Option(Path("runs/pairwise"), "--out", "-o"),
                 max_new_tokens: int = typer.Option(256)) -> None:
    """Judge two systems on 9 abilities x 3 dimensions, position-swapped; win/draw/loss table."""
    from medllm.eval.loaders import TaskDataError
    from medllm.eval.pairwise import pairwise

    try:
        pairwise(model_a, model_b, questions, judge, out, max_new_tokens=max_new_tokens)
    except TaskDataError as exc:
        fail(str(exc))
    console.print((out / "pairwise.md").read_text(), highlight=False)
