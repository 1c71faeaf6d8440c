"""The studio FastAPI app: JSON endpoints under /api (polled by the page), the chat engine
under /chat/<run>/v1 (the serving app itself), static pages at / — no CDN, nothing external.

Auth is the server's: with a key file every /api and /chat request needs
``Authorization: Bearer <key>`` (a page link or image may use the HttpOnly cookie that
``POST /api/login`` sets, for GET only, so a cross-site form cannot act with it). Actions that
change something (launch, stop, resume, save, upload) go to the hash-chained audit log."""
from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from medllm.studio import data_view, recipes, runs_view
from medllm.studio.chat import ChatModels, chat_runs
from medllm.studio.launcher import Launcher, LaunchError, display_command

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_JSON = 5 * 1024 * 1024
MAX_UPLOAD = 200 * 1024 * 1024
COOKIE = "medllm_studio"


class StudioError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, has_keys: bool, allow_unauthenticated_remote: bool = False) -> None:
    """The server's rule: a non-loopback address only with keys (the studio can start processes)."""
    if not is_loopback(host) and not has_keys and not allow_unauthenticated_remote:
        raise StudioError(400, f"refusing to bind {host} without --api-keys: anyone on the network could "
                               "launch runs and read data. Create keys with `medllm serve-key USER --api-keys keys.txt`.")


def create_studio_app(runs_dir: str | Path, *, keys=None, audit=None, launcher: Launcher | None = None,
                      chat: ChatModels | None = None) -> FastAPI:
    runs_dir = Path(runs_dir).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    launcher = launcher or Launcher(runs_dir)
    chat = chat or ChatModels(runs_dir, keys=keys, audit=audit)
    sessions: dict[str, str] = {}   # cookie token -> user

    app = FastAPI(title="medllm studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.launcher, app.state.chat, app.state.runs_dir = launcher, chat, runs_dir
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(StudioError)
    async def _studio_error(request: Request, exc: StudioError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("studio: unhandled error on %s", request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        path = request.url.path
        if keys is not None and (path.startswith("/api/") or path.startswith("/chat/")):
            if path.startswith("/chat/") and path.count("/") >= 3:
                return await call_next(request)      # the serving app checks the bearer key itself
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else None
            user = keys.user_for(token)
            if user is None and request.method == "GET":
                user = sessions.get(request.cookies.get(COOKIE, ""))
            if user is None:
                return JSONResponse({"error": "missing or invalid API key (send 'Authorization: Bearer <key>')"},
                                    status_code=401)
            request.state.user = user
        else:
            request.state.user = "anonymous"
        return await call_next(request)

    # ---------------------------------------------------------------- helpers
    async def body(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > MAX_JSON:
            raise StudioError(413, f"request body over {MAX_JSON} bytes")
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise StudioError(400, f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise StudioError(400, "body must be a JSON object")
        return data

    def run_path(name: str) -> Path:
        if not NAME.fullmatch(name or ""):
            raise StudioError(400, f"bad run name {name!r}")
        p = runs_dir / name
        if not p.is_dir():
            raise StudioError(404, f"no run {name!r} under {runs_dir}")
        return p

    def record(request: Request, action: str, what: str, detail: str = "") -> None:
        if audit is not None:
            audit.append(user=request.state.user, endpoint=action, model=what, adapter=None, model_sha256="",
                         prompt=detail, response="", prompt_tokens=0, completion_tokens=0, status=200)

    def need_dict(data: dict, key: str) -> dict:
        v = data.get(key)
        if not isinstance(v, dict):
            raise StudioError(400, f"'{key}' must be a mapping (the recipe)")
        return v

    # ---------------------------------------------------------------- pages and session
    @app.get("/")
    async def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/whoami")
    async def whoami(request: Request):
        return {"user": request.state.user, "auth": keys is not None, "runs_dir": str(runs_dir)}

    @app.post("/api/login")
    async def login(request: Request):
        token = secrets.token_urlsafe(24)
        sessions[token] = request.state.user
        resp = JSONResponse({"user": request.state.user})
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return resp

    # ---------------------------------------------------------------- runs
    @app.get("/api/runs")
    async def list_runs():
        rows = [runs_view.summary(p, launcher) for p in runs_view.run_dirs(runs_dir)]
        for r in rows:
            r["queue_position"] = launcher.position(r["name"])
        return {"runs": rows, "queue": [j.name for j in launcher.queue]}

    @app.get("/api/runs/{name}")
    async def run_detail(name: str):
        d = runs_view.detail(run_path(name), launcher)
        d["queue_position"] = launcher.position(name)
        return d

    @app.get("/api/runs/{name}/files/{rel:path}")
    async def run_file(name: str, rel: str):
        root = run_path(name).resolve()
        target = (root / rel).resolve()
        if root not in target.parents or not target.is_file():
            raise StudioError(404, f"{rel}: no such file in run {name}")
        return FileResponse(target)

    @app.post("/api/runs/{name}/stop")
    async def stop(name: str, request: Request):
        run_path(name)
        try:
            msg = launcher.stop(name)
        except LaunchError as exc:
            raise StudioError(409, str(exc)) from None
        record(request, "studio/stop", name)
        return {"run": name, "result": msg}

    @app.post("/api/runs/{name}/resume")
    async def resume(name: str, request: Request):
        run_path(name)
        data = await body(request)
        try:
            status = launcher.resume(name, parallel=bool(data.get("parallel")))
        except LaunchError as exc:
            raise StudioError(409, str(exc)) from None
        record(request, "studio/resume", name)
        return {"run": name, "status": status}

    # ---------------------------------------------------------------- recipes and launch
    @app.get("/api/schema")
    async def schema():
        return recipes.recipe_schema()

    def command_for(data: dict, req: dict, *, write: bool) -> tuple[list[str], str]:
        name = str(req.get("run_name") or data.get("name") or "run")
        if not NAME.fullmatch(name):
            raise StudioError(400, f"bad run name {name!r}")
        source = Path(req["source"]) if req.get("source") else None
        original = req.get("original") if isinstance(req.get("original"), dict) else None
        save_to = runs_dir / ".studio" / "recipes" / f"{name}.yaml"
        if not write:   # only describe the command: nothing is written while the user edits
            try:
                if source is not None and original is not None:
                    items = recipes.overrides_between(original, data)
                    argv = ["run", str(source), *items, "--root", str(runs_dir), "--name", name]
                    return argv, display_command(argv)
            except recipes.NotExpressible:
                pass
            argv = ["run", str(save_to), "--root", str(runs_dir), "--name", name]
            return argv, display_command(argv)
        argv, _ = recipes.run_argv(data, source=source, original=original, save_to=save_to,
                                   runs_dir=runs_dir, name=name)
        return argv, display_command(argv)

    @app.post("/api/validate")
    async def validate(request: Request):
        req = await body(request)
        data = need_dict(req, "data")
        problems = recipes.validate(data, check_files=bool(req.get("check_files", True)))
        _, command = command_for(data, req, write=False)
        return {"problems": problems, "yaml": recipes.dump_yaml(data), "command": command}

    @app.post("/api/recipe/load")
    async def recipe_load(request: Request):
        req = await body(request)
        from medllm.config.loader import RecipeError

        try:
            return recipes.load_yaml(Path(str(req.get("path", ""))))
        except RecipeError as exc:
            raise StudioError(400, str(exc)) from None

    @app.post("/api/recipe/parse")
    async def recipe_parse(request: Request):
        import yaml

        req = await body(request)
        try:
            data = yaml.safe_load(str(req.get("yaml", ""))) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise StudioError(400, f"invalid YAML: {where}{getattr(exc, 'problem', exc)}") from None
        if not isinstance(data, dict):
            raise StudioError(400, "a recipe must be a mapping at top level")
        return {"data": data}

    @app.post("/api/recipe/save")
    async def recipe_save(request: Request):
        req = await body(request)
        data = need_dict(req, "data")
        path = Path(str(req.get("path") or ""))
        if not str(path) or path.suffix not in (".yaml", ".yml"):
            raise StudioError(400, "save path must end in .yaml or .yml")
        text = recipes.save_yaml(path, data)
        record(request, "studio/save", str(path), text)
        return {"path": str(path), "yaml": text}

    @app.post("/api/launch")
    async def launch(request: Request):
        req = await body(request)
        data = need_dict(req, "data")
        problems = recipes.validate(data)
        if problems:
            return JSONResponse({"error": f"{len(problems)} problem(s) in the recipe", "problems": problems},
                                status_code=422)
        argv, command = command_for(data, req, write=True)
        name = argv[argv.index("--name") + 1]
        try:
            status = launcher.submit(name, argv, parallel=bool(req.get("parallel")))
        except LaunchError as exc:
            raise StudioError(409, str(exc)) from None
        record(request, "studio/launch", name, command)
        return {"run": name, "status": status, "command": command}

    # ---------------------------------------------------------------- data
    @app.post("/api/data/inspect")
    async def data_inspect(request: Request):
        import asyncio

        req = await body(request)
        return await asyncio.to_thread(data_view.inspect_file, str(req.get("path", "")),
                                       kind=str(req.get("kind") or "auto"), fmt=str(req.get("format") or "auto"))

    @app.post("/api/data/upload")
    async def data_upload(request: Request, filename: str):
        import asyncio

        from medllm.io import atomic_write_bytes

        safe = Path(filename).name
        if not NAME.fullmatch(safe):
            raise StudioError(400, f"bad file name {filename!r}")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_UPLOAD:
                raise StudioError(413, f"upload over {MAX_UPLOAD} bytes")
        dest = runs_dir / ".studio" / "uploads" / safe
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, raw)
        record(request, "studio/upload", str(dest))
        return await asyncio.to_thread(data_view.inspect_file, str(dest))

    @app.post("/api/data/deid")
    async def data_deid(request: Request):
        import asyncio

        req = await body(request)
        texts = req.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise StudioError(400, "'texts' must be a list of strings")
        return {"samples": await asyncio.to_thread(data_view.deid_preview, texts[:10])}

    # ---------------------------------------------------------------- compare
    @app.get("/api/compare")
    async def compare(request: Request):
        items = request.query_params.getlist("items")
        if len(items) < 2:
            raise StudioError(400, "pick two or more runs or evaluation folders")
        resolved, losses, pairwise = [], {}, []
        for item in items:
            label, res, run = _resolve_result(item)
            resolved.append((label, res))
            if run is not None:
                st = (runs_view.read_json(run / "state.json") or {}).get("stages") or {}
                for s in runs_view.step_order(run, st)[1:-3]:
                    c = runs_view.curves(run, s)
                    if c["train"] or c["eval"]:
                        losses.setdefault(s, {})[run.name] = c
                for pj in sorted(run.rglob("pairwise.json")):
                    pairwise.append({"source": str(pj.relative_to(runs_dir)), **(runs_view.read_json(pj) or {})})
        out = runs_view.compare(resolved)
        out.update(losses=losses, pairwise=pairwise)
        return out

    def _resolve_result(item: str):
        """``run`` (its last evaluated model), ``run:label``, or a folder/file with results.json."""
        name, _, label = item.partition(":")
        if NAME.fullmatch(name) and (runs_dir / name / "state.json").is_file():
            run = runs_dir / name
            results = ((runs_view.read_json(run / "state.json") or {}).get("stages", {}).get("eval") or {}).get("results") or {}
            if not results:
                raise StudioError(400, f"run {name!r} has no evaluation results yet")
            label = label or list(results)[-1]
            if label not in results:
                raise StudioError(400, f"run {name!r} has no results for {label!r} (has: {', '.join(results)})")
            res = runs_view.read_json(Path(results[label])) or {}
            return f"{name}:{label}", res, run
        p = Path(item)
        p = p / "results.json" if p.is_dir() else p
        res = runs_view.read_json(p)
        if not isinstance(res, dict):
            raise StudioError(400, f"{item}: not a run name nor an eval folder with results.json")
        return item, res, None

    # ---------------------------------------------------------------- chat
    @app.get("/api/chat/models")
    async def chat_models():
        return {"runs": chat_runs(runs_dir)}

    @app.post("/api/chat/load")
    async def chat_load(request: Request):
        req = await body(request)
        name = str(req.get("run", ""))
        run_path(name)
        from medllm.serve.models import ServeModelError

        try:
            return await chat.load(name)
        except (ServeModelError, OSError, ValueError) as exc:
            raise StudioError(400, f"cannot load run {name!r}: {exc}") from None

    app.mount("/chat", chat)

    @app.on_event("shutdown")
    async def _shutdown():
        chat.stop()
        launcher.close()

    return app
