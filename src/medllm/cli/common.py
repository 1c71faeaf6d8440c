"""Shared CLI helpers: consistent error output and logging setup."""
from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

console = Console(stderr=False)
err_console = Console(stderr=True)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # transformers/datasets are chatty at INFO
    for noisy in ("transformers", "datasets", "httpx", "urllib3", "presidio-analyzer", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 1) -> "typer.Exit":
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
