"""``medllm studio``: the web UI over a runs folder."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from medllm.cli.common import console, fail


def studio(runs: Path = typer.Option(Path("runs"), "--runs", help="Folder holding run folders."),
           host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
           port: int = typer.Option(8010, min=1, max=65535),
           api_keys: Optional[Path] = typer.Option(None, "--api-keys", help="Key file (see `medllm serve-key`)."),
           audit_log: Optional[Path] = typer.Option(None, "--audit-log", help="Hash-chained JSONL audit log."),
           allow_unauthenticated_remote: bool = typer.Option(
               False, help="Allow a non-loopback bind without --api-keys (not recommended).")) -> None:
    """Web UI: runs (live), launch form, data checks, compare evaluations, chat — offline."""
    from medllm.serve.audit import AuditLog
    from medllm.serve.security import KeyFileError, KeyStore
    from medllm.studio.app import StudioError, check_bind

    try:
        check_bind(host, api_keys is not None, allow_unauthenticated_remote)
        keys = KeyStore.load(api_keys) if api_keys else None
        audit = AuditLog(audit_log) if audit_log else None
    except (StudioError, KeyFileError, ValueError, OSError) as exc:
        fail(getattr(exc, "message", str(exc)))
    import uvicorn

    from medllm.studio.app import create_studio_app

    app = create_studio_app(runs, keys=keys, audit=audit)
    console.print(f"medllm studio on http://{host}:{port}  (runs: {runs.resolve()}, auth {'on' if keys else 'off'}, "
                  f"audit {'on' if audit else 'off'})", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)


def register(app: typer.Typer) -> None:
    app.command("studio")(studio)
