"""Gateway backend: generation by an OpenAI-compatible server that runs elsewhere
(vLLM, llama-server, TGI, another medllm), behind this app's auth, limits, audit,
safety layer and metrics.

``UpstreamEngine`` stands where a ``BatchingEngine`` stands in a ``ServedModel``;
``UpstreamGeneration`` has the interface of ``generation.Generation`` (start,
events, run, cancel, finished, choices, completion_tokens), so the route handlers
treat both alike. Every request goes upstream as a stream, whatever the client
asked: one code path, each upstream chunk becomes one event (nothing buffered),
and closing that stream is how a client's disconnect cancels the upstream work.
Token counts come from the upstream's ``usage`` (``stream_options.include_usage``),
else from the number of content chunks (one token each on vLLM and medllm)."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from medllm.serve.engine import Event
from medllm.serve.generation import Choice
from medllm.serve.models import ServeModelError

log = logging.getLogger(__name__)


class UpstreamError(Exception):
    """A request the upstream could not take; ``status`` is what the client gets."""

    def __init__(self, status: int, message: str, type_: str = "server_error", code: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.headers = status, message, type_, code, headers


class UpstreamUnavailable(ServeModelError):
    """Startup: the upstream cannot be reached or has nothing to serve."""


def read_key_file(path: str | Path) -> str:
    """First non-comment line of ``path`` (the upstream's bearer key)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UpstreamUnavailable(f"--upstream-key-file {path}: cannot read ({exc.strerror})") from None
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            return line
    raise UpstreamUnavailable(f"--upstream-key-file {path}: no key in the file")


class Upstream:
    """Connection settings and the HTTP client pool for one upstream server."""

    def __init__(self, url: str, *, api_key: str | None = None, connect_timeout: float = 5.0,
                 read_timeout: float = 120.0, max_connections: int = 256, on_close=None):
        if not url.startswith(("http://", "https://")):
            raise UpstreamUnavailable(f"--upstream {url!r}: expected http://HOST:PORT or https://...")
        url = url.rstrip("/")
        self.base = url[:-3] if url.endswith("/v1") else url   # accept both .../v1 and the root
        self.api_key = api_key
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.max_connections = max_connections
        self._client: tuple[object, httpx.AsyncClient] | None = None
        self._on_close = on_close   # e.g. stop the engine child this gateway started

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def timeout(self) -> httpx.Timeout:
        # read = the longest silence allowed between two chunks (and before the headers)
        return httpx.Timeout(connect=self.connect_timeout, read=self.read_timeout, write=self.read_timeout,
                             pool=self.connect_timeout)

    def client(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (a client must not cross loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client[0] is not loop:
            limits = httpx.Limits(max_connections=self.max_connections,
                                  max_keepalive_connections=self.max_connections)
            self._client = (loop, httpx.AsyncClient(timeout=self.timeout(), limits=limits, trust_env=False))
        return self._client[1]

    def list_models(self) -> list[str]:
        """Model ids the upstream serves (``GET /v1/models``); clear error when unreachable."""
        url = f"{self.base}/v1/models"
        try:
            resp = httpx.get(url, headers=self.headers, timeout=self.timeout(), trust_env=False)
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"upstream {self.base} is not reachable ({_reason(exc)}); start it first, "
                                      "or name its models with --upstream-model to start the gateway before it"
                                      ) from None
        if resp.status_code in (401, 403):
            raise UpstreamUnavailable(f"upstream {self.base} rejected the gateway's key (HTTP {resp.status_code}); "
                                      "check --upstream-key-file")
        if resp.status_code != 200:
            raise UpstreamUnavailable(f"{url}: HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            ids = [m["id"] for m in resp.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise UpstreamUnavailable(f"{url}: not an OpenAI model list: {resp.text[:200]}") from None
        if not ids:
            raise UpstreamUnavailable(f"{url}: the upstream serves no models")
        return ids


class UpstreamEngine:
    """One upstream model, in the place of an in-process engine (same counters for /metrics)."""

    backend = "upstream"

    def __init__(self, upstream: Upstream, model: str):
        self.upstream, self.model = upstream, model
        self.in_flight = 0
        self.stats = {"requests_total": 0, "tokens_generated_total": 0, "prompt_tokens_total": 0,
                      "errors_total": 0}

    @property
    def waiting(self) -> int:   # the upstream queues; the gateway's own bound is the app's admission
        return 0

    @property
    def active(self) -> int:
        return self.in_flight

    def stop(self) -> None:
        # pooled connections close with the process; the upstream is only stopped when
        # this gateway started it (--engine vllm)
        self.upstream.close()

    def generation(self, kind: str, body: dict, params: list, adapter: str | None) -> "UpstreamGeneration":
        """``kind`` "chat" (body has ``messages``) or "completion" (``prompt``); ``params``: one
        SamplingParams per choice, defaults already applied by the app; ``adapter``: the
        upstream model id of a LoRA module, else this engine's model."""
        p = params[0]
        payload = {**body, "model": adapter or self.model, "stream": True, "stream_options": {"include_usage": True},
                   "n": len(params), "max_tokens": p.max_tokens, "temperature": p.temperature, "top_p": p.top_p,
                   # not OpenAI's own fields, but vLLM, llama-server and medllm honour them
                   "top_k": p.top_k, "repetition_penalty": p.repetition_penalty}
        if p.stop:
            payload["stop"] = list(p.stop)
        if p.seed is not None:
            payload["seed"] = p.seed
        return UpstreamGeneration(self, kind, payload, params)


@dataclass
class _Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reported: bool = False


class UpstreamGeneration:
    """One proxied request; events are (choice index, Event) like ``Generation``."""

    def __init__(self, engine: UpstreamEngine, kind: str, payload: dict, params: list):
        self.engine, self.kind, self.payload, self.params = engine, kind, payload, params
        self.choices = [Choice(i) for i in range(len(params))]
        self.usage = _Usage()
        self._task: asyncio.Task | None = None

    # ---------------------------------------------------------------- Generation interface
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._opened: asyncio.Future = loop.create_future()
        self.engine.in_flight += 1
        self.engine.stats["requests_total"] += 1
        self._task = loop.create_task(self._pump())

    async def connected(self) -> UpstreamError | None:
        """Wait for the upstream's response headers: None when it is streaming, else the
        error to answer with (so "upstream down" is a 503, not a 200 stream of errors)."""
        return await asyncio.shield(self._opened)

    async def events(self):
        while True:
            item = await self._queue.get()
            if item is None:
                return
            i, ev = item
            yield i, ev

    async def run(self) -> list[Choice]:
        async for _ in self.events():
            pass
        return self.choices

    @property
    def finished(self) -> bool:
        return self._task is None or self._task.done()

    def cancel(self) -> None:
        # cancelling the task leaves the `async with client.stream()`: the upstream
        # connection is closed, which is how the upstream learns to stop generating
        if self._task is not None and not self._task.done():
            self._task.cancel()

    @property
    def prompt_ids(self) -> range:
        # the app counts prompt tokens as len(prompt_ids); the upstream tokenized the
        # prompt, so only the count it reported is known here
        return range(self.usage.prompt_tokens)

    @property
    def completion_tokens(self) -> int:
        return self.usage.completion_tokens if self.usage.reported else sum(c.completion_tokens for c in self.choices)

    # ---------------------------------------------------------------- the upstream stream
    def _emit(self, i: int, ev: Event) -> None:
        ch = self.choices[i]
        if ev.kind == "delta":
            ch.text += ev.text
            ch.completion_tokens += 1
        else:
            ch.finish_reason = ev.finish_reason or ("error" if ev.kind == "error" else None)
            if ev.kind == "error":
                ch.error = ev.text
        self._queue.put_nowait((i, ev))

    def _fail_all(self, message: str) -> None:
        """The stream broke after it started: every unfinished choice ends in an error event."""
        self.engine.stats["errors_total"] += 1
        for ch in self.choices:
            if ch.finish_reason is None:
                self._emit(ch.index, Event("error", text=message))

    def _open(self, error: UpstreamError | None) -> None:
        if not self._opened.done():
            self._opened.set_result(error)
            if error is not None:
                self.engine.stats["errors_total"] += 1

    async def _pump(self) -> None:
        up = self.engine.upstream
        url = f"{up.base}/v1/{'chat/completions' if self.kind == 'chat' else 'completions'}"
        pending_done: dict[int, str] = {}
        try:
            async with up.client().stream("POST", url, json=self.payload, headers=up.headers) as resp:
                if resp.status_code != 200:
                    self._open(_http_error(up.base, resp.status_code, await resp.aread(), resp.headers))
                    return
                self._open(None)
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        obj = json.loads(data)
                    except json.JSONDecodeError:
                        self._fail_all(f"upstream {up.base} sent an unreadable event: {data[:120]!r}")
                        return
                    if obj.get("error"):
                        err = obj["error"]
                        self._fail_all(f"upstream error: {err.get('message', err) if isinstance(err, dict) else err}")
                        return
                    self._take(obj, pending_done)
            for i, reason in sorted(pending_done.items()):
                # "done" waits for the usage chunk, which follows the last finish_reason
                self._emit(i, Event("done", finish_reason=reason, prompt_tokens=self.usage.prompt_tokens,
                                    completion_tokens=self.choices[i].completion_tokens))
            if len(pending_done) < len(self.choices):
                self._fail_all(f"upstream {up.base} ended the stream before the answer was finished")
        except asyncio.CancelledError:
            if not self._opened.done():
                self._opened.set_result(UpstreamError(499, "client went away"))
            raise
        except httpx.TimeoutException as exc:
            if not self._opened.done():
                phase = "connect to" if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)) else "answer from"
                limit = up.connect_timeout if phase == "connect to" else up.read_timeout
                status = 503 if phase == "connect to" else 504
                self._open(UpstreamError(status, f"upstream {up.base}: no {phase} it within {limit:g} s",
                                         code="upstream_timeout"))
            else:
                self._fail_all(f"upstream {up.base} sent nothing for {up.read_timeout:g} s (read timeout)")
        except httpx.TransportError as exc:
            if not self._opened.done():
                self._open(UpstreamError(503, f"upstream {up.base} is not reachable ({_reason(exc)}); "
                                              "is the engine running?", code="upstream_unavailable"))
            else:
                self._fail_all(f"upstream {up.base} connection lost mid-stream ({_reason(exc)})")
        except Exception as exc:   # never let a proxy bug hang the client
            log.exception("upstream request failed")
            self._open(UpstreamError(502, f"upstream request failed: {type(exc).__name__}"))
            self._fail_all(f"upstream request failed: {type(exc).__name__}")
        finally:
            self.engine.in_flight -= 1
            self.engine.stats["prompt_tokens_total"] += self.usage.prompt_tokens
            self.engine.stats["tokens_generated_total"] += self.completion_tokens
            self._queue.put_nowait(None)

    def _take(self, obj: dict, pending_done: dict[int, str]) -> None:
        usage = obj.get("usage")
        if isinstance(usage, dict) and "completion_tokens" in usage:
            self.usage = _Usage(int(usage.get("prompt_tokens") or 0), int(usage["completion_tokens"]), True)
        for ch in obj.get("choices") or []:
            i = int(ch.get("index") or 0)
            if not 0 <= i < len(self.choices):
                continue
            text = (ch.get("delta") or {}).get("content") if self.kind == "chat" else ch.get("text")
            if text:
                self._emit(i, Event("delta", text=text))
            if ch.get("finish_reason"):
                pending_done[i] = ch["finish_reason"]


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text[:160]


def _http_error(base: str, status: int, body: bytes, headers) -> UpstreamError:
    """What the client gets for an upstream HTTP error: its own request errors pass
    through; the gateway's credential or the upstream's failures become 502/503."""
    try:
        err = json.loads(body).get("error")
        msg = err.get("message") if isinstance(err, dict) else (err or body.decode(errors="replace"))
    except (ValueError, AttributeError):
        msg = body.decode(errors="replace")
    msg = str(msg)[:500]
    if status in (401, 403):
        return UpstreamError(502, f"upstream {base} rejected the gateway's key (HTTP {status}); "
                                  "the operator must check --upstream-key-file", code="upstream_auth")
    if status == 429:
        return UpstreamError(429, f"upstream busy: {msg}", "rate_limit_error", "upstream_busy",
                             {"Retry-After": headers.get("retry-after", "1")})
    if 400 <= status < 500:
        return UpstreamError(status, f"upstream: {msg}", "invalid_request_error")
    return UpstreamError(503 if status == 503 else 502, f"upstream {base} failed (HTTP {status}): {msg}")


def upstream_pool(upstream: Upstream, *, models: dict[str, str] | None = None, sampling=None,
                  sha256: str = "", adapters: dict[str, tuple[str, str]] | None = None,
                  backend: str = "upstream"):
    """A ModelPool whose models generate upstream.

    ``models``: id clients use -> upstream model id (default: everything the upstream
    lists, under its own ids). ``adapters`` (only with one model): client id ->
    (upstream id of a LoRA module, sha256), as vLLM serves a run's stages."""
    from medllm.config.serve import SamplingDefaults
    from medllm.serve.models import ModelPool, ServedModel

    models = dict(models) if models else {m: m for m in upstream.list_models()}
    now = int(time.time())
    served = [ServedModel(id=mid, engine=UpstreamEngine(upstream, target), tokenizer=None, folder=Path(),
                          sha256=sha256, adapters=dict(adapters or {}) if len(models) == 1 else {},
                          sampling=sampling or SamplingDefaults(), backend=backend, created=now)
              for mid, target in models.items()]
    return ModelPool(served)
