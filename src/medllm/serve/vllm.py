"""``medllm serve ... --engine vllm``: vLLM's OpenAI-compatible server as a child
process on loopback, with medllm's app in front of it as the gateway.

What is served (``plan_vllm``): a model reference as itself; for a run folder, when
every LoRA stage was trained on one base model and the final model is the last
LoRA stage merged, that base with each stage as a named LoRA module (so
``model=<run>/<stage>`` works as with the in-process engine and ``<run>`` is the
final stage's adapter); otherwise the final merged model alone, and the stages that
vLLM cannot serve on it are named in ``plan.notes`` (adapters stacked on different
bases cannot be served as one LoRA: serve their merged weights instead).

The child gets a free loopback port and a random key (in its environment, not on
its command line where ``ps`` shows it), so only this gateway can reach its /v1
routes; vLLM's key does not cover its other routes, hence loopback only. It runs
in its own process group and dies with medllm (SIGTERM to the group on exit,
SIGINT or SIGTERM, and the kernel's parent-death signal if medllm is killed).

``MEDLLM_VLLM_COMMAND`` replaces ``python -m vllm.entrypoints.openai.api_server``
(a vLLM in its own virtual environment, or the tests' fake engine); the
availability checks are then the child's business."""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from medllm.serve.models import ServeModelError

COMMAND_ENV = "MEDLLM_VLLM_COMMAND"
VLLM_MODULE = "vllm.entrypoints.openai.api_server"
# vLLM's LoRA kernels are built for these ranks; --max-lora-rank must be one of them
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


class EngineUnavailable(ServeModelError):
    """vLLM cannot run here (not installed, no CUDA GPU)."""


class EngineStartError(ServeModelError):
    """The engine child exited or did not become healthy in time."""


def engine_command() -> list[str]:
    custom = os.environ.get(COMMAND_ENV)
    return shlex.split(custom) if custom else [sys.executable, "-m", VLLM_MODULE]


def check_vllm() -> None:
    """Fail in one line, before anything starts, when vLLM cannot run here."""
    if os.environ.get(COMMAND_ENV):
        return
    if importlib.util.find_spec("vllm") is None:
        raise EngineUnavailable("--engine vllm: vLLM is not installed in this environment "
                                "(pip install -e \".[vllm]\" on a CUDA GPU machine, or set "
                                f"{COMMAND_ENV} to a vLLM in another environment); "
                                "on CPU serve with the default in-process engine")
    import torch

    if not torch.cuda.is_available():
        raise EngineUnavailable("--engine vllm: no CUDA GPU visible (torch.cuda.is_available() is False); "
                                "on CPU serve with the default in-process engine")


# ---------------------------------------------------------------------- what to serve
@dataclass
class VllmPlan:
    model: Path                                     # the HF folder vLLM loads
    served_name: str                                # its id inside vLLM (= the id clients use)
    loras: dict[str, Path] = field(default_factory=dict)       # vLLM LoRA name -> adapter folder
    aliases: dict[str, str] = field(default_factory=dict)      # client id -> vLLM LoRA name
    max_lora_rank: int = 0
    notes: list[str] = field(default_factory=list)             # stages not served, and why

    def args(self, *, host: str, port: int, tensor_parallel: int = 1, gpu_memory_utilization: float = 0.9,
             max_model_len: int | None = None) -> list[str]:
        args = ["--model", str(self.model), "--served-model-name", self.served_name, "--host", host,
                "--port", str(port), "--tensor-parallel-size", str(tensor_parallel),
                "--gpu-memory-utilization", str(gpu_memory_utilization)]
        # No --generation-config: vLLM's default reads the model's generation_config.json,
        # whose extra eos ids (Llama-3's <|eot_id|>) must stop generation; its sampling
        # values never apply, as the gateway sends the recipe's defaults on every request.
        if max_model_len:
            args += ["--max-model-len", str(max_model_len)]
        if self.loras:
            args += ["--enable-lora", "--max-loras", str(len(self.loras)),
                     "--max-lora-rank", str(self.max_lora_rank),
                     "--lora-modules", *(f"{name}={path}" for name, path in self.loras.items())]
        return args


def _lora_rank(adapter: Path) -> int:
    cfg = json.loads((Path(adapter) / "adapter_config.json").read_text())
    r = max([int(cfg.get("r") or 8), *map(int, (cfg.get("rank_pattern") or {}).values())])
    return next((x for x in LORA_RANKS if x >= r), r)


def plan_vllm(spec: str | Path, *, adapters: dict[str, Path] | None = None) -> VllmPlan:
    """Decide what the vLLM child loads for ``medllm serve SPEC --engine vllm``."""
    from medllm.models.loading import model_folder
    from medllm.models.registry import resolve
    from medllm.serve.models import is_run_dir, read_run

    adapters = dict(adapters or {})
    if not is_run_dir(spec):
        ref = resolve(spec)
        if ref.kind == "gguf" or str(spec).endswith(".gguf"):
            raise ServeModelError(f"{spec}: vLLM serves a Hugging Face folder, not a GGUF "
                                  "(serve GGUF on CPU with --backend llama.cpp)")
        plan = VllmPlan(model_folder(ref), ref.name, loras=adapters)
    else:
        run = read_run(spec)
        final = run.model_dir.resolve()
        final_stage = run.stage_models.get(run.model_dir, run.stage_models.get(final))
        final_aid = f"{run.name}/{final_stage}" if final_stage else None
        bases = {run.adapter_bases[a].resolve() for a in run.adapters}
        if len(bases) == 1 and final_aid in run.adapters:
            # one base for every LoRA stage: serve it and each stage as a LoRA module
            base = bases.pop()
            if base == final:
                base_id = run.name
            elif base in run.stage_models:
                base_id = f"{run.name}/{run.stage_models[base]}:merged"
            else:
                base_id = f"{run.name}/base"
            plan = VllmPlan(base, base_id, loras=dict(run.adapters))
            if base != final:
                plan.aliases[run.name] = final_aid   # <run> = the final stage's adapter on its base
        else:
            plan = VllmPlan(final, run.name)
            for aid, path in run.adapters.items():
                if run.adapter_bases[aid].resolve() == final:
                    plan.loras[aid] = path
                else:
                    plan.notes.append(f"{aid}: trained on {run.adapter_bases[aid]}, not on the served final "
                                      "model; vLLM serves one base model, so this stage is not served "
                                      "(serve its merged weights as a model folder instead)")
        if adapters:
            if plan.model != final:
                raise ServeModelError("--adapter with --engine vllm goes on the served base model, "
                                      f"which is {plan.model} here, not the run's final model")
            plan.loras.update(adapters)
    for name, path in plan.loras.items():
        if not (Path(path) / "adapter_config.json").is_file():
            raise ServeModelError(f"adapter {name}: {path} has no adapter_config.json")
    plan.max_lora_rank = max((_lora_rank(p) for p in plan.loras.values()), default=0)
    return plan


# ---------------------------------------------------------------------- the child process
def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Child side, before exec: SIGTERM when the parent dies (Linux), so even a
    SIGKILLed medllm leaves no GPU process behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except Exception:
        pass


class EngineProcess:
    """An OpenAI-compatible server started as a child: health wait, log tail, clean stop."""

    def __init__(self, argv: list[str], *, env: dict | None = None, log_path: Path | None = None,
                 name: str = "vLLM"):
        self.argv, self.name = argv, name
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="medllm-engine-",
                                                                             suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def start(self) -> "EngineProcess":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True, preexec_fn=_die_with_parent)
        return self

    def tail(self, n: int = 20) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return "".join(deque(fh, maxlen=n)).rstrip()
        except OSError:
            return ""

    def wait_ready(self, base_url: str, api_key: str | None, timeout: float, poll: float = 0.5) -> None:
        """Until ``GET /v1/models`` answers 200 (vLLM's /health is up before the
        models are), the child exits, or ``timeout`` seconds pass."""
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise EngineStartError(f"{self.name} exited with code {rc} before it was ready "
                                       f"(log: {self.log_path}); its last lines:\n{self.tail()}")
            try:
                if httpx.get(f"{base_url}/v1/models", headers=headers, timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise EngineStartError(f"{self.name} was not ready after {timeout:g} s (log: {self.log_path}); "
                                       f"its last lines:\n{self.tail()}")
            time.sleep(poll)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM to the whole process group (vLLM's workers included), SIGKILL after ``grace``."""
        if self.proc is None:
            return
        try:
            pgid = os.getpgid(self.proc.pid)
        except ProcessLookupError:
            pgid = None
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
            if pgid is None:
                break
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; sweep what is left of its group
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        self._log.close()


class _StopOnSignal:
    """While the engine starts (before uvicorn handles signals), SIGTERM/SIGINT unwind
    through ``finally`` so the child is stopped."""

    def __enter__(self):
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._raise)
            except ValueError:   # not the main thread: leave signals alone
                pass
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class VllmServer:
    """A started engine: where it listens, its internal key, its process."""

    plan: VllmPlan
    url: str
    api_key: str
    process: EngineProcess

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_vllm(plan: VllmPlan, *, tensor_parallel: int = 1, gpu_memory_utilization: float = 0.9,
               max_model_len: int | None = None, timeout: float = 900, command: list[str] | None = None,
               log_path: Path | None = None) -> VllmServer:
    """Start the engine for ``plan`` and wait until it serves; stops it again on any failure.

    ``command`` replaces ``python -m vllm.entrypoints.openai.api_server`` (default:
    ``$MEDLLM_VLLM_COMMAND`` or that module)."""
    port, key = free_port(), "mk-engine-" + secrets.token_urlsafe(24)
    argv = [*(command or engine_command()),
            *plan.args(host="127.0.0.1", port=port, tensor_parallel=tensor_parallel,
                       gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len)]
    proc = EngineProcess(argv, env={"VLLM_API_KEY": key}, log_path=log_path)
    url = f"http://127.0.0.1:{port}"
    with _StopOnSignal():
        try:
            proc.start()
            proc.wait_ready(url, key, timeout)
        except BaseException:
            proc.stop(grace=10)
            raise
    return VllmServer(plan, url, key, proc)


def vllm_pool(server: VllmServer, *, sampling=None, connect_timeout: float = 5.0, read_timeout: float = 120.0,
              max_connections: int = 256):
    """The ModelPool the gateway serves for a started engine: the served model and its
    LoRA modules under the ids clients use; stopping the pool stops the engine."""
    from medllm.serve.models import folder_sha256
    from medllm.serve.upstream import Upstream, upstream_pool

    plan = server.plan
    up = Upstream(server.url, api_key=server.api_key, connect_timeout=connect_timeout, read_timeout=read_timeout,
                  max_connections=max_connections, on_close=server.stop)
    adapters = {aid: (aid, folder_sha256(Path(path))) for aid, path in plan.loras.items()}
    for alias, target in plan.aliases.items():
        adapters[alias] = (target, adapters[target][1])
    pool = upstream_pool(up, models={plan.served_name: plan.served_name}, sampling=sampling,
                         sha256=folder_sha256(plan.model), adapters=adapters, backend="vllm")
    pool.served[0].folder = plan.model
    return pool
