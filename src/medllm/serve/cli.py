"""``medllm serve``, ``medllm serve-key`` and ``medllm audit-verify``."""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from medllm.cli.common import console, fail


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_adapters(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            fail(f"--adapter expects NAME=PATH, got {item!r}")
        if not (Path(path) / "adapter_config.json").is_file():
            fail(f"--adapter {name}: {path} is not a PEFT adapter folder (no adapter_config.json)")
        out[name] = Path(path)
    return out


def _parse_upstream_models(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, _, target = item.partition("=")
        if not name:
            fail(f"--upstream-model expects NAME or NAME=UPSTREAM_ID, got {item!r}")
        out[name] = target or name
    return out


def serve(model: str = typer.Argument("smollm2-135m-instruct", help="Model reference or run folder (runs/<name>)."),
          host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
          port: int = typer.Option(8000, min=1, max=65535),
          api_keys: Optional[Path] = typer.Option(None, "--api-keys", help="Key file (see `medllm serve-key`)."),
          audit_log: Optional[Path] = typer.Option(None, "--audit-log", help="Hash-chained JSONL audit log."),
          audit_full_text: bool = typer.Option(False, help="Also store prompt/response text in the audit log."),
          audit_key: Optional[Path] = typer.Option(None, "--audit-key", help="HMAC key file of the audit chain "
                                                   "(created 0600 if absent; default <audit-log>.key). Keep it off the log's disk if you can."),
          audit_deid: bool = typer.Option(False, "--audit-deid", help="De-identify prompt/response before a full-text audit writes them."),
          audit_max_bytes: Optional[int] = typer.Option(None, "--audit-max-bytes", min=1, help="Rotate the audit log past this size (chain continues)."),
          adapter: Optional[list[str]] = typer.Option(None, "--adapter", help="NAME=PATH of a LoRA adapter (repeat)."),
          check: bool = typer.Option(False, "--check", help="Verify model/adapter file hashes before serving."),
          backend: str = typer.Option("transformers", help="transformers | llama.cpp | hybrid (llama.cpp for a lone stream, batching under load; GGUF only)."),
          max_batch: int = typer.Option(8, min=1, help="Sequences decoded together."),
          max_queue: int = typer.Option(64, min=1, help="Waiting requests before answering 429."),
          rate_limit: int = typer.Option(60, min=1, help="Requests per minute per API key (per client address without keys)."),
          no_safety: bool = typer.Option(False, "--no-safety", help="Disable disclaimer and red-flag notices."),
          allow_unauthenticated_remote: bool = typer.Option(
              False, help="Allow a non-loopback bind without --api-keys (not recommended)."),
          temperature: Optional[float] = typer.Option(None, help="Default temperature for this model."),
          dtype: str = typer.Option("auto", help="auto (bf16 on AMX CPUs) | float32 | bfloat16"),
          engine: str = typer.Option("medllm", help="medllm (in-process, see --backend) | vllm (a vLLM child "
                                                    "process on loopback, medllm as the gateway in front)."),
          tensor_parallel: int = typer.Option(1, min=1, help="--engine vllm: GPUs to shard the model over."),
          gpu_memory_utilization: float = typer.Option(0.9, min=0.05, max=1.0, help="--engine vllm: GPU memory share."),
          max_model_len: Optional[int] = typer.Option(None, min=16, help="--engine vllm: context length "
                                                                        "(default: the recipe's max_seq_len, else the model's)."),
          engine_start_timeout: float = typer.Option(900, min=1, help="--engine vllm: seconds to wait for it to serve."),
          upstream: Optional[str] = typer.Option(None, "--upstream", help="Gateway mode: URL of a running "
                                                 "OpenAI-compatible server (vLLM, llama-server, TGI, medllm)."),
          upstream_key_file: Optional[Path] = typer.Option(None, "--upstream-key-file",
                                                           help="File holding the upstream's API key."),
          upstream_model: Optional[list[str]] = typer.Option(None, "--upstream-model", help="NAME[=UPSTREAM_ID] to "
                                                             "serve (repeat; default: all the upstream lists)."),
          upstream_timeout: float = typer.Option(120, min=0.1, help="Seconds the upstream may stay silent mid-answer."),
          upstream_connect_timeout: float = typer.Option(5, min=0.1, help="Seconds to connect before answering 503.")
          ) -> None:
    """Serve a model or a training run over an OpenAI-compatible API with a web chat at /."""
    from medllm.config.serve import SamplingDefaults, ServeConfig

    if engine not in ("medllm", "vllm"):
        fail(f"--engine {engine!r}: expected medllm or vllm")
    if upstream and engine == "vllm":
        fail("--upstream and --engine vllm both say where generation happens; pick one")
    if upstream and check:
        fail("--check verifies local weights; with --upstream the upstream holds them")
    if engine == "vllm":
        from medllm.serve.vllm import EngineUnavailable, check_vllm

        try:
            check_vllm()   # before anything starts
        except EngineUnavailable as exc:
            fail(escape(str(exc)))

    if audit_full_text and not audit_deid:
        console.print("[yellow]--audit-full-text without --audit-deid: prompts and answers are written to the "
                      "audit log as sent, identifiers included[/]")
    if not _is_loopback(host) and api_keys is None and not allow_unauthenticated_remote:
        fail(f"refusing to bind {host} without --api-keys: anyone on the network could use the model. "
             "Create keys with `medllm serve-key USER --api-keys keys.txt`.")
    try:
        config = ServeConfig(host=host, port=port, api_keys_file=str(api_keys) if api_keys else None,
                             audit_log=str(audit_log) if audit_log else None, audit_full_text=audit_full_text,
                             audit_key_file=str(audit_key) if audit_key else None, audit_deid=audit_deid,
                             audit_max_bytes=audit_max_bytes, max_batch=max_batch, max_queue=max_queue, rate_limit_per_minute=rate_limit,
                             safety_layer=not no_safety, allow_unauthenticated_remote=allow_unauthenticated_remote,
                             engine=engine, tensor_parallel=tensor_parallel,
                             gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                             engine_start_timeout_s=engine_start_timeout, upstream_url=upstream,
                             upstream_key_file=str(upstream_key_file) if upstream_key_file else None,
                             upstream_models=_parse_upstream_models(upstream_model or []),
                             upstream_read_timeout_s=upstream_timeout,
                             upstream_connect_timeout_s=upstream_connect_timeout,
                             **({"sampling": SamplingDefaults(temperature=temperature)}
                                if temperature is not None else {}))
    except ValueError as exc:
        fail(str(exc))
    serve_with(model, config, adapters=_parse_adapters(adapter or []), check=check, backend=backend, dtype=dtype)


def serve_with(model: str, config, *, adapters: dict[str, Path], check: bool, backend: str, dtype: str) -> None:
    import uvicorn

    from medllm.models.registry import ModelNotFound
    from medllm.serve.app import create_app
    from medllm.serve.audit import open_audit
    from medllm.serve.models import ServeModelError, check_served, is_run_dir
    from medllm.serve.security import KeyFileError, KeyStore

    try:
        if check:   # before anything is created or loaded
            problems = check_served(model, adapters)
            if problems:   # first line names the first bad file; the rest follow, one per line
                more = f" ({len(problems) - 1} more below)" if len(problems) > 1 else ""
                fail(escape(f"--check: refusing to serve: {problems[0]}{more}"
                            + "".join(f"\n  {p}" for p in problems[1:])))
            console.print("[green]model files verified against their sha256 manifests[/]")
        keys = KeyStore.load(config.api_keys_file) if config.api_keys_file else None
        audit = open_audit(config) if config.audit_log else None
        sampling = config.sampling
        if is_run_dir(model) and (Path(model) / "recipe.yaml").is_file() and "sampling" not in config.model_fields_set:
            sampling = _run_sampling(Path(model), sampling)
        pool = _engine_pool(model, config, adapters=adapters, dtype=dtype, sampling=sampling, backend=backend)
    except (KeyFileError, ServeModelError, ModelNotFound, ValueError, OSError) as exc:
        fail(str(exc))
    app = create_app(config, pool, keys=keys, audit=audit)
    console.print(f"serving {', '.join(pool.ids())} on http://{config.host}:{config.port} "
                  f"(web chat at /, auth {'on' if keys else 'off'}, audit {'on' if audit else 'off'})",
                  highlight=False)
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning", server_header=False)
    finally:
        pool.stop()


def _engine_pool(model: str, config, *, adapters, dtype: str, sampling, backend: str):
    """Where generation happens: in this process (default), a vLLM child, or an upstream server."""
    from medllm.serve.models import load_pool

    if config.upstream_url:
        from medllm.serve.upstream import Upstream, read_key_file, upstream_pool

        up = Upstream(config.upstream_url,
                      api_key=read_key_file(config.upstream_key_file) if config.upstream_key_file else None,
                      connect_timeout=config.upstream_connect_timeout_s, read_timeout=config.upstream_read_timeout_s,
                      max_connections=config.max_batch + config.max_queue)
        return upstream_pool(up, models=config.upstream_models or None, sampling=sampling)
    if config.engine == "vllm":
        from medllm.serve.vllm import EngineStartError, plan_vllm, start_vllm, vllm_pool

        plan = plan_vllm(model, adapters=adapters)
        for note in plan.notes:
            console.print(f"[yellow]{note}[/]", highlight=False)
        console.print(f"starting vLLM on {plan.model} (tensor parallel {config.tensor_parallel}); "
                      "this can take minutes", highlight=False)
        try:
            server = start_vllm(plan, tensor_parallel=config.tensor_parallel,
                                gpu_memory_utilization=config.gpu_memory_utilization,
                                max_model_len=config.max_model_len or _run_max_len(model),
                                timeout=config.engine_start_timeout_s)
        except EngineStartError as exc:   # its log lines are full of [brackets]: not rich markup
            fail(escape(str(exc)))
        try:
            return vllm_pool(server, sampling=sampling, connect_timeout=config.upstream_connect_timeout_s,
                             read_timeout=config.upstream_read_timeout_s,
                             max_connections=config.max_batch + config.max_queue)
        except BaseException:
            server.stop()
            raise
    return load_pool(model, adapters=adapters, max_batch=config.max_batch, max_queue=config.max_queue,
                     dtype=dtype, sampling=sampling, backend=backend)


def _run_max_len(model: str) -> int | None:
    """A run's recipe ``model.max_seq_len`` is the context vLLM reserves KV cache for."""
    from medllm.serve.models import is_run_dir

    if not (is_run_dir(model) and (Path(model) / "recipe.yaml").is_file()):
        return None
    from medllm.runs import RunFolder

    try:
        return RunFolder(Path(model)).recipe().model.max_seq_len
    except Exception:
        return None


def _run_sampling(run: Path, fallback):
    """A run's recipe ``serve.sampling`` becomes that model's default sampling."""
    from medllm.runs import RunFolder

    try:
        return RunFolder(run).recipe().serve.sampling
    except Exception as exc:  # an unreadable recipe must not stop serving the weights
        console.print(f"[yellow]{run}/recipe.yaml: serve defaults not read ({exc}); using built-in defaults[/]")
        return fallback


def serve_key(user: str = typer.Argument(..., help="User id the key belongs to (shows in the audit log)."),
              api_keys: Path = typer.Option(..., "--api-keys", help="Key file to append the hash to.")) -> None:
    """Create an API key for USER: prints it once, stores only its SHA-256."""
    from medllm.serve.security import KeyFileError, add_key

    try:
        key = add_key(api_keys, user)
    except KeyFileError as exc:
        fail(str(exc))
    console.print(key, highlight=False)


def audit_verify(log: Path = typer.Argument(..., help="Audit log JSONL written by `medllm serve --audit-log`."),
                 key: Optional[Path] = typer.Option(None, "--key", help="The server's audit key file "
                                                    "(default <log>.key). Without a key only the linkage is checked.")) -> None:
    """Check an audit log's HMAC chain across rotated files and its signed head; exit 1 on tampering."""
    from medllm.serve.audit import load_or_create_key, log_files, verify_audit_log

    if not log_files(log):
        fail(f"{log}: not found")
    key_path = key or log.with_name(log.name + ".key")
    if key is not None and not key.is_file():
        fail(f"{key}: audit key not found")
    k = load_or_create_key(key_path) if key_path.is_file() else None
    problems = verify_audit_log(log, k)
    if problems:
        fail("\n".join(problems))
    n = sum(1 for f in log_files(log) for line in f.open() if line.strip())
    if k is None:
        console.print(f"[yellow]{log}: {n} record(s) linked, but NOT authenticated: no key given (--key), so a "
                      "rewritten and recomputed log would also pass[/]", highlight=False)
    else:
        console.print(f"[green]{log}: {n} record(s) in {len(log_files(log))} file(s), HMAC chain and signed head "
                      "intact[/]", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("serve-key")(serve_key)
    app.command("audit-verify")(audit_verify)
