"""CLI: ``medllm export`` and ``medllm chat`` (heavy imports inside the commands)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from medllm.cli.common import console, fail


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
    app.command("chat")(chat_cmd)


def export_cmd(
    run_or_model: str = typer.Argument(..., help="Run folder (runs/NAME), registry name, HF folder or .gguf."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (new, empty, or an earlier export)."),
    fmt: str = typer.Option("all", "--format", "-f", help="hf, gguf, ollama or all (comma-separated allowed)."),
    gguf_type: str = typer.Option("q8_0", "--gguf-type", help="f16, q8_0 or q4_0."),
    dtype: str = typer.Option("auto", help="Merged HF weights: auto (base model's), float32, bfloat16, float16."),
    system: Optional[str] = typer.Option(None, help="Default system prompt written into the Ollama Modelfile."),
) -> None:
    """Export a run's final model (LoRA merged) as HF safetensors, GGUF and an Ollama Modelfile."""
    from medllm.export import ExportError, export_model

    try:
        record = export_model(run_or_model, out, formats=fmt, gguf_type=gguf_type.lower(), dtype=dtype, system=system)
    except ExportError as exc:
        fail(str(exc))
    console.print(f"[green]exported[/] {run_or_model} -> {out} ({', '.join(record['formats'])}) "
                  f"in {record['seconds']} s", highlight=False)
    for name in record["files"]:
        if name in ("Modelfile", "hf/config.json") or name.endswith(".gguf"):
            console.print(f"  {out / name}", highlight=False)


def chat_cmd(
    run_or_model: str = typer.Argument("smollm2-135m-instruct", help="Run folder, registry name, HF folder or .gguf."),
    temperature: Optional[float] = typer.Option(None, min=0, help="0 = greedy. Default: run recipe / 0.6."),
    top_p: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Default: run recipe / 0.9."),
    top_k: Optional[int] = typer.Option(None, min=0, help="Default: run recipe / 50."),
    repetition_penalty: Optional[float] = typer.Option(None, min=0.01, help="Default: run recipe / 1.2."),
    max_tokens: int = typer.Option(256, min=1, help="Longest answer, in tokens."),
    system: Optional[str] = typer.Option(None, help="System prompt for the conversation."),
    seed: Optional[int] = typer.Option(None, help="Seed for reproducible sampling."),
    dtype: str = typer.Option("auto", help="auto (bf16 where the CPU has AMX), float32, bfloat16."),
) -> None:
    """Multi-turn terminal chat with streamed answers (/reset, /exit)."""
    from medllm.chat import ChatSession, run_chat
    from medllm.export import ExportError, default_sampling, resolve_run_model
    from medllm.models import load_causal_lm

    try:
        model_dir, adapter = resolve_run_model(run_or_model)
    except ExportError as exc:
        fail(str(exc))
    defaults = default_sampling(run_or_model)
    chosen = dict(temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=repetition_penalty)
    sampling = {k: (v if v is not None else defaults[k]) for k, v in chosen.items()}
    model, tok = load_causal_lm(model_dir, dtype=dtype, adapter=adapter)
    session = ChatSession(model, tok, system=system, max_new_tokens=max_tokens, seed=seed, **sampling)
    label = f"{run_or_model}" + (f" (adapter {adapter.name})" if adapter else "")
    banner = (f"medllm chat — {label}; temperature {sampling['temperature']}, top_p {sampling['top_p']}, "
              f"top_k {sampling['top_k']}, repetition_penalty {sampling['repetition_penalty']}")
    run_chat(session, banner=banner)
