"""The FastAPI application: OpenAI-compatible routes, web chat, auth, limits, audit.

Every failure a client can cause is answered with an OpenAI-style JSON error
and a 4xx status; the body is parsed by hand so malformed JSON, wrong types and
oversize bodies never reach a handler (and never become a 5xx)."""
from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from medllm.config.serve import ServeConfig
from medllm.serve.audit import AuditLog, open_audit
from medllm.serve.engine import QueueFull
from medllm.serve.generation import Generation
from medllm.serve.metrics import Metrics
from medllm.serve.models import ModelPool, ServedModel
from medllm.serve.safety import SafetyLayer
from medllm.serve.sampling import SamplingParams
from medllm.serve.schemas import ChatCompletionRequest, CompletionRequest
from medllm.serve.security import KeyStore, RateLimiter, audit_rejection, client_address
from medllm.serve.upstream import UpstreamEngine

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, headers: dict | None = None):
        self.status, self.message, self.type, self.code, self.headers = status, message, type_, code, headers
        self.audited = False   # True when the route already wrote this request's audit record


def _error(status: int, message: str, type_: str, code: str | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": None, "code": code}},
                        status_code=status, headers=headers)


def create_app(config: ServeConfig, models: ModelPool | ServedModel | list[ServedModel], *,
               keys: KeyStore | None = None, audit: AuditLog | None = None,
               safety: SafetyLayer | None = None) -> FastAPI:
    """Build the app around already-loaded models (engines started; the caller stops them)."""
    pool = models if isinstance(models, ModelPool) else ModelPool(
        [models] if isinstance(models, ServedModel) else list(models))
    if keys is None and config.api_keys_file:
        keys = KeyStore.load(config.api_keys_file)
    if audit is None and config.audit_log:
        audit = open_audit(config)
    safety = safety or SafetyLayer(enabled=config.safety_layer)
    limiter = RateLimiter(config.rate_limit_per_minute)
    metrics = Metrics()

    app = FastAPI(title="medllm", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.pool, app.state.metrics, app.state.audit = pool, metrics, audit
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        metrics.observe(request.url.path, exc.status)
        if not exc.audited:   # every refused attempt leaves exactly one record
            audit_rejection(audit, request, exc.status, exc.code or exc.type)
        return _error(exc.status, exc.message, exc.type, exc.code, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        audit_rejection(audit, request, exc.status_code, "http_error")
        return _error(exc.status_code, str(exc.detail), "invalid_request_error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        if config.audit_full_text:   # the operator chose to keep text: the full traceback too
            log.error("unhandled error on %s", request.url.path, exc_info=exc)
        else:   # frames (code lines) but not the exception's message, which may quote the prompt
            log.error("unhandled %s on %s\n%s", type(exc).__name__, request.url.path,
                      "".join(traceback.format_tb(exc.__traceback__)))
        audit_rejection(audit, request, 500, "server_error")
        return _error(500, "internal server error", "server_error")

    # ---------------------------------------------------------------- helpers
    def authenticate(request: Request) -> str:
        if keys is None:   # anonymous: the same limit, per client address
            ok, wait = limiter.allow("ip:" + client_address(request))
            if not ok:
                raise ApiError(429, f"rate limit of {config.rate_limit_per_minute} requests/minute exceeded",
                               "rate_limit_error", "rate_limit_exceeded", {"Retry-After": str(int(wait) + 1)})
            request.state.user = "anonymous"
            return "anonymous"
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        user = keys.user_for(token)
        if user is None:   # failed attempts count per address: key guessing meets the same limit
            ok, wait = limiter.allow("ip:" + client_address(request))
            if not ok:
                raise ApiError(429, f"rate limit of {config.rate_limit_per_minute} requests/minute exceeded",
                               "rate_limit_error", "rate_limit_exceeded", {"Retry-After": str(int(wait) + 1)})
            raise ApiError(401, "missing or invalid API key (send 'Authorization: Bearer <key>')",
                           "authentication_error", "invalid_api_key")
        request.state.user = user   # a refused (429) attempt is still audited under its user
        ok, wait = limiter.allow(user)
        if not ok:
            raise ApiError(429, f"rate limit of {config.rate_limit_per_minute} requests/minute exceeded",
                           "rate_limit_error", "rate_limit_exceeded", {"Retry-After": str(int(wait) + 1)})
        request.state.user = user
        return user

    async def parse(request: Request, schema):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_body_bytes:
            raise ApiError(413, f"request body over {config.max_body_bytes} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > config.max_body_bytes:
                raise ApiError(413, f"request body over {config.max_body_bytes} bytes")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "body must be a JSON object")
        try:
            return schema.model_validate(data)
        except ValidationError as exc:
            msgs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
            raise ApiError(400, msgs) from None
        except RecursionError:
            raise ApiError(400, "body nested too deeply") from None

    def pick_model(req) -> tuple[ServedModel, str | None, str]:
        try:
            sm, adapter = pool.resolve(req.model)
        except KeyError:
            # the requested name is not echoed: errors never repeat what a client sent
            raise ApiError(404, f"model not found; available: {', '.join(pool.ids())}",
                           code="model_not_found") from None
        return sm, adapter, req.model or sm.id

    def sampling_for(req, sm: ServedModel) -> list[SamplingParams]:
        d = sm.sampling
        max_tokens = req.max_completion_tokens or req.max_tokens or d.max_tokens
        if max_tokens > config.max_completion_tokens:
            raise ApiError(400, f"max_tokens {max_tokens} over this server's limit {config.max_completion_tokens}")
        if req.n > config.max_n:
            raise ApiError(400, f"n={req.n} over this server's limit {config.max_n}")
        base = dict(temperature=d.temperature if req.temperature is None else req.temperature,
                    top_p=d.top_p if req.top_p is None else req.top_p,
                    top_k=d.top_k if req.top_k is None else req.top_k,
                    repetition_penalty=d.repetition_penalty if req.repetition_penalty is None
                    else req.repetition_penalty,
                    max_tokens=max_tokens, stop=list(req.stop or []))
        return [SamplingParams(**base, seed=None if req.seed is None else req.seed + i) for i in range(req.n)]

    def tokenize(sm: ServedModel, text: str) -> list[int]:
        ids = sm.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > config.max_prompt_tokens:
            raise ApiError(400, f"prompt is {len(ids)} tokens, over this server's limit {config.max_prompt_tokens}",
                           code="context_length_exceeded")
        if not ids:
            raise ApiError(400, "prompt is empty")
        return ids

    live: list[Generation] = []   # admitted requests whose sequences have not all ended in the engine

    def start(gen: Generation) -> None:
        # bounded: a full batch running plus max_queue waiting, beyond that 429 (never unbounded latency).
        # Capacity is freed by the engine finishing, so a client that vanished cannot leak a slot.
        busy = ApiError(429, "server busy: request queue is full, retry shortly", "rate_limit_error",
                        "queue_full", {"Retry-After": "1"})
        live[:] = [g for g in live if not g.finished]
        if len(live) >= config.max_batch + config.max_queue:
            raise busy
        try:
            gen.start()
        except QueueFull:
            raise busy from None
        live.append(gen)

    def finish(user, endpoint, model_id, sm, adapter_id, prompt, gen: Generation, status, flags, t0):
        text = "\n".join(c.text for c in gen.choices)
        prompt_tokens = len(gen.prompt_ids)
        metrics.observe(endpoint, status, time.monotonic() - t0)
        metrics.add_tokens(prompt_tokens, gen.completion_tokens)
        if audit is not None:
            adapter_sha = sm.adapters[adapter_id][1] if adapter_id in sm.adapters else None
            audit.append(user=user, endpoint=endpoint, model=model_id, adapter=adapter_id,
                         model_sha256=adapter_sha or sm.sha256, prompt=prompt, response=text,
                         prompt_tokens=prompt_tokens, completion_tokens=gen.completion_tokens, status=status,
                         finish_reason=",".join(str(c.finish_reason) for c in gen.choices), red_flags=flags)

    # ---------------------------------------------------------------- routes
    @app.get("/health")
    async def health():
        return {"status": "ok", "models": pool.ids(),
                "queue": {sm.id: sm.engine.waiting for sm in pool.served}}

    @app.get("/metrics")
    async def prometheus():
        return PlainTextResponse(metrics.render(pool), media_type="text/plain; version=0.0.4")

    @app.get("/")
    async def web_chat():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/v1/models")
    async def list_models(request: Request):
        authenticate(request)
        data = []
        for sm in pool.served:
            data.append({"id": sm.id, "object": "model", "created": sm.created, "owned_by": "medllm",
                         "backend": sm.backend, "sha256": sm.sha256, "adapter": None,
                         "sampling": sm.sampling.model_dump()})
            for aid, (_, sha) in sm.adapters.items():
                data.append({"id": aid, "object": "model", "created": sm.created, "owned_by": "medllm",
                             "backend": sm.backend, "sha256": sha, "adapter": aid, "parent": sm.id,
                             "sampling": sm.sampling.model_dump()})
        return {"object": "list", "data": data, "safety": {"enabled": safety.enabled,
                                                           "disclaimer": safety.disclaimer}}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        user = authenticate(request)
        req = await parse(request, ChatCompletionRequest)
        sm, adapter, model_id = pick_model(req)
        msgs = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in req.messages]
        upstream = isinstance(sm.engine, UpstreamEngine)   # gateway: the upstream applies its own template
        try:
            prompt = (json.dumps(msgs, ensure_ascii=False) if upstream
                      else sm.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False))
        except Exception as exc:  # template errors are the request's fault (e.g. role order)
            raise ApiError(400, f"cannot apply the chat template: {exc}") from None
        last_user = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
        flags = safety.check(last_user)
        metrics.red_flags += bool(flags)
        gen = (sm.engine.generation("chat", {"messages": msgs}, sampling_for(req, sm), adapter) if upstream
               else Generation(sm.engine, tokenize(sm, prompt), sampling_for(req, sm), adapter))
        start(gen)
        adapter_id = req.model if adapter else None
        pre, post = safety.prefix(flags), safety.suffix()
        rid, created, t0 = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), time.monotonic()
        endpoint = "/v1/chat/completions"
        extra = {"medllm": {"red_flags": flags, "disclaimer": safety.enabled}}
        if upstream and (failed := await gen.connected()):   # upstream down/refused: an HTTP error, audited
            finish(user, endpoint, model_id, sm, adapter_id, prompt, gen, failed.status, flags, t0)
            err = ApiError(failed.status, failed.message, failed.type, failed.code, failed.headers)
            err.audited = True
            raise err

        if not req.stream:
            try:
                choices = await gen.run()
            except BaseException:   # client went away: free the rows, keep the audit trail
                finish(user, endpoint, model_id, sm, adapter_id, prompt, gen, 499, flags, t0)
                raise
            finally:
                gen.cancel()
            status = 500 if any(c.error for c in choices) else 200
            finish(user, endpoint, model_id, sm, adapter_id, prompt, gen, status, flags, t0)
            if status != 200:
                raise ApiError(500, choices[0].error or "generation failed", "server_error")
            return {"id": rid, "object": "chat.completion", "created": created, "model": model_id,
                    "choices": [{"index": c.index, "message": {"role": "assistant", "content": pre + c.text + post},
                                 "finish_reason": c.finish_reason, "logprobs": None} for c in choices],
                    "usage": _usage(gen), **extra}

        def chunk(i, delta, finish_reason=None):
            return _sse({"id": rid, "object": "chat.completion.chunk", "created": created, "model": model_id,
                         "choices": [{"index": i, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
                         **extra})

        async def stream():
            status = 200
            try:
                for i in range(len(gen.params)):
                    yield chunk(i, {"role": "assistant", "content": pre})
                async for i, ev in gen.events():
                    if ev.kind == "delta":
                        yield chunk(i, {"content": ev.text})
                    elif ev.kind == "error":
                        status = 500
                        yield _sse({"error": {"message": ev.text, "type": "server_error"}})
                    else:
                        if post:
                            yield chunk(i, {"content": post})
                        yield chunk(i, {}, ev.finish_reason)
                if req.wants_usage_in_stream:
                    yield _sse({"id": rid, "object": "chat.completion.chunk", "created": created,
                                "model": model_id, "choices": [], "usage": _usage(gen)})
                yield "data: [DONE]\n\n"
            except BaseException:
                status = 499  # client went away
                raise
            finally:
                gen.cancel()
                finish(user, endpoint, model_id, sm, adapter_id, prompt, gen, status, flags, t0)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/v1/completions")
    async def completions(request: Request):
        # Raw text completion: no chat template and no safety text, so evaluation
        # harnesses get exactly the model's continuation.
        user = authenticate(request)
        req = await parse(request, CompletionRequest)
        sm, adapter, model_id = pick_model(req)
        upstream = isinstance(sm.engine, UpstreamEngine)
        gen = (sm.engine.generation("completion", {"prompt": req.prompt}, sampling_for(req, sm), adapter)
               if upstream else Generation(sm.engine, tokenize(sm, req.prompt), sampling_for(req, sm), adapter))
        start(gen)
        adapter_id = req.model if adapter else None
        rid, created, t0 = f"cmpl-{uuid.uuid4().hex}", int(time.time()), time.monotonic()
        endpoint = "/v1/completions"
        if upstream and (failed := await gen.connected()):
            finish(user, endpoint, model_id, sm, adapter_id, req.prompt, gen, failed.status, [], t0)
            err = ApiError(failed.status, failed.message, failed.type, failed.code, failed.headers)
            err.audited = True
            raise err

        def body(choices, usage=None):
            out = {"id": rid, "object": "text_completion", "created": created, "model": model_id,
                   "choices": choices}
            if usage is not None:
                out["usage"] = usage
            return out

        if not req.stream:
            try:
                choices = await gen.run()
            except BaseException:   # client went away: free the rows, keep the audit trail
                finish(user, endpoint, model_id, sm, adapter_id, req.prompt, gen, 499, [], t0)
                raise
            finally:
                gen.cancel()
            status = 500 if any(c.error for c in choices) else 200
            finish(user, endpoint, model_id, sm, adapter_id, req.prompt, gen, status, [], t0)
            if status != 200:
                raise ApiError(500, choices[0].error or "generation failed", "server_error")
            return body([{"index": c.index, "text": c.text, "finish_reason": c.finish_reason, "logprobs": None}
                         for c in choices], _usage(gen))

        async def stream():
            status = 200
            try:
                async for i, ev in gen.events():
                    if ev.kind == "delta":
                        yield _sse(body([{"index": i, "text": ev.text, "finish_reason": None, "logprobs": None}]))
                    elif ev.kind == "error":
                        status = 500
                        yield _sse({"error": {"message": ev.text, "type": "server_error"}})
                    else:
                        yield _sse(body([{"index": i, "text": "", "finish_reason": ev.finish_reason,
                                          "logprobs": None}]))
                if req.wants_usage_in_stream:
                    yield _sse(body([], _usage(gen)))
                yield "data: [DONE]\n\n"
            except BaseException:
                status = 499
                raise
            finally:
                gen.cancel()
                finish(user, endpoint, model_id, sm, adapter_id, req.prompt, gen, status, [], t0)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def _usage(gen: Generation) -> dict:
    p = len(gen.prompt_ids)
    return {"prompt_tokens": p, "completion_tokens": gen.completion_tokens,
            "total_tokens": p + gen.completion_tokens}


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"
