"""Chat with a finished run: the run's models are loaded once into a serving ``ModelPool``
(the same engine, adapters-by-name and safety layer as ``medllm serve``) and the serving
app answers under ``/chat/<run>/v1/...`` in this process — every browser tab shares that
one copy of the weights. Its auth and audit are the studio's own key store and log."""
from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from pathlib import Path

MAX_LOADED = 2          # runs kept in memory; the least recently used one is unloaded


class ChatModels:
    def __init__(self, runs_dir: Path, *, keys=None, audit=None, max_loaded: int = MAX_LOADED, dtype: str = "auto"):
        self.runs_dir, self.keys, self.audit = Path(runs_dir), keys, audit
        self.max_loaded, self.dtype = max_loaded, dtype
        self._apps: OrderedDict[str, tuple[object, object]] = OrderedDict()   # run -> (pool, app)
        self._lock = threading.Lock()

    def _load(self, name: str):
        from medllm.config.serve import ServeConfig
        from medllm.serve.app import create_app
        from medllm.serve.cli import _run_sampling
        from medllm.serve.models import load_pool

        with self._lock:
            if name in self._apps:
                self._apps.move_to_end(name)
                return self._apps[name]
            run = self.runs_dir / name
            config = ServeConfig()
            sampling = _run_sampling(run, config.sampling) if (run / "recipe.yaml").is_file() else config.sampling
            pool = load_pool(run, dtype=self.dtype, sampling=sampling, max_batch=4, max_queue=16)
            app = create_app(config, pool, keys=self.keys, audit=self.audit)
            self._apps[name] = (pool, app)
            while len(self._apps) > self.max_loaded:
                _, (old, _) = self._apps.popitem(last=False)
                old.stop()
            return pool, app

    async def load(self, name: str) -> dict:
        pool, _ = await asyncio.to_thread(self._load, name)
        return {"run": name, "base": f"/chat/{name}", "models": pool.ids(),
                "sampling": pool.default.sampling.model_dump()}

    def loaded(self, name: str):
        with self._lock:
            return self._apps.get(name, (None, None))[1]

    def stop(self) -> None:
        with self._lock:
            for pool, _ in self._apps.values():
                pool.stop()
            self._apps.clear()

    async def __call__(self, scope, receive, send):
        """ASGI: ``/chat/<run>/<rest>`` -> the run's serving app at ``/<rest>``."""
        if scope["type"] != "http":
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if path.startswith("/chat/"):
            path = path[len("/chat"):]
        name, _, rest = path.lstrip("/").partition("/")
        app = self.loaded(name)
        if app is None:
            from starlette.responses import JSONResponse

            resp = JSONResponse({"error": {"message": f"run {name!r} is not loaded: POST /api/chat/load first",
                                           "type": "invalid_request_error"}}, status_code=404)
            await resp(scope, receive, send)
            return
        child = dict(scope, path="/" + rest, raw_path=("/" + rest).encode(), root_path="")
        await app(child, receive, send)


def chat_runs(runs_dir: Path) -> list[dict]:
    """Runs with at least one finished causal-LM stage (what ``medllm serve RUN`` would serve)."""
    from medllm.studio.runs_view import read_json, run_dirs

    out = []
    for run in run_dirs(Path(runs_dir)):
        stages = (read_json(run / "state.json") or {}).get("stages") or {}
        done = [s for s, v in stages.items() if v.get("status") == "done" and v.get("model_dir")]
        if done:
            out.append({"run": run.name, "stages": done})
    return out
