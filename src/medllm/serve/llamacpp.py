"""Optional llama.cpp backend (llama-cpp-python) for GGUF files.

Same ``submit``/``stop`` interface as the transformers engine. llama-cpp-python's
high-level API decodes one sequence at a time, so requests are served in arrival
order by one worker thread; its strength is single-stream latency on quantized
weights. Sampling uses llama.cpp's samplers; detokenization and stop strings use
the same code path as the transformers engine, so responses look the same.

Not a required dependency: it compiles from source (see bench/serve_vs_llamacpp.py
for the build flags that work on this CPU)."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

from medllm.config.serve import SamplingDefaults
from medllm.serve.engine import BatchingEngine, Event, GenRequest, QueueFull, _Seq, _stop_token_ids

log = logging.getLogger(__name__)


class LlamaCppUnavailable(RuntimeError):
    pass


def open_llama(gguf: str | Path, *, n_ctx: int = 2048, n_threads: int | None = None):
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise LlamaCppUnavailable(
            "llama-cpp-python is not installed; build it with CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DGGML_AVX=ON "
            "-DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON\" pip install llama-cpp-python==0.3.36"
        ) from exc
    return Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=n_threads or os.cpu_count() or 2,
                 n_batch=512, verbose=False)


class LlamaCppEngine:
    def __init__(self, llm, tokenizer, *, max_queue: int = 64, max_context: int = 2048):
        self.llm = llm
        self.tokenizer = tokenizer
        self.max_queue = max_queue
        self.max_batch = 1
        self.max_context = max_context
        self.adapters: set[str] = set()
        self.stop_ids = _stop_token_ids(None, tokenizer) | {int(llm.token_eos())}
        self._pending: deque[GenRequest] = deque()
        self._cond = threading.Condition()
        self._running = False
        self._busy = 0
        self.stats = {"requests_total": 0, "tokens_generated_total": 0, "prompt_tokens_total": 0,
                      "decode_steps_total": 0, "rejected_queue_full_total": 0, "errors_total": 0}

    # the transformers engine's detokenization, stop and streaming logic, shared as is
    _advance = BatchingEngine._advance
    _detokenize = BatchingEngine._detokenize

    def start(self) -> "LlamaCppEngine":
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="medllm-llamacpp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def submit(self, req: GenRequest) -> None:
        if req.adapter is not None:
            raise ValueError("the llama.cpp backend serves no LoRA adapters")
        with self._cond:
            if len(self._pending) >= self.max_queue:
                self.stats["rejected_queue_full_total"] += 1
                raise QueueFull(f"queue full ({self.max_queue} waiting)")
            self._pending.append(req)
            self.stats["requests_total"] += 1
            self._cond.notify()

    @property
    def waiting(self) -> int:
        return len(self._pending)

    @property
    def active(self) -> int:
        return self._busy

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._pending:
                    self._cond.wait()
                if not self._running:
                    break
                req = self._pending.popleft()
            if req.cancelled.is_set():
                req.on_event(Event("done", finish_reason="cancelled", prompt_tokens=len(req.prompt_ids)))
                self._busy = 0
                continue
            self._busy = 1
            try:
                self._run_one(req)
            except Exception as exc:
                log.exception("llama.cpp generation failed")
                self.stats["errors_total"] += 1
                req.on_event(Event("error", text=f"generation failed: {type(exc).__name__}"))
            finally:
                with self._cond:
                    if not self._pending:
                        self._busy = 0

    def _run_one(self, req: GenRequest) -> None:
        p = req.params
        seq = _Seq(req, self.tokenizer, "cpu")
        self.stats["prompt_tokens_total"] += len(req.prompt_ids)
        if p.seed is not None:
            self.llm.set_seed(int(p.seed))
        gen = self.llm.generate(req.prompt_ids, top_k=p.top_k if p.top_k > 0 else 0, top_p=p.top_p,
                                min_p=0.0, temp=p.temperature, repeat_penalty=p.repetition_penalty, reset=True)
        for token in gen:
            if req.cancelled.is_set():
                req.on_event(Event("done", finish_reason="cancelled", prompt_tokens=len(req.prompt_ids),
                                   completion_tokens=len(seq.generated)))
                return
            self.stats["decode_steps_total"] += 1
            if self._advance(seq, int(token)):
                return


def load_llamacpp_served(spec: str | Path, *, model_id: str, max_queue: int, sampling: SamplingDefaults,
                         hybrid: bool = False, max_batch: int = 8):
    from medllm.models import load_tokenizer
    from medllm.models.registry import resolve
    from medllm.serve.models import ServedModel, ServeModelError, folder_sha256

    ref = resolve(spec)
    if ref.kind == "builtin":
        from medllm.models.convert import locate_embedded_gguf

        gguf = locate_embedded_gguf()
    elif ref.kind == "gguf":
        gguf = ref.path
    else:
        raise ServeModelError(f"--backend llama.cpp needs a .gguf file (or the builtin model), got {spec}")
    tok = load_tokenizer(spec)
    llm = open_llama(gguf)
    engine = LlamaCppEngine(llm, tok, max_queue=max_queue).start()
    if hybrid:
        from medllm.models import load_causal_lm
        from medllm.serve.engine import BatchingEngine

        model, _ = load_causal_lm(spec)   # same weights, dequantized (bf16 on AMX)
        engine = HybridEngine(engine, BatchingEngine(model, tok, max_batch=max_batch, max_queue=max_queue).start())
    from medllm.io import sha256_file

    return ServedModel(id=model_id, engine=engine, tokenizer=tok, folder=Path(gguf).parent,
                       sha256=sha256_file(gguf), sampling=sampling, backend="hybrid" if hybrid else "llama.cpp", created=int(time.time()))


__all__ = ["HybridEngine", "LlamaCppEngine", "LlamaCppUnavailable", "open_llama", "load_llamacpp_served"]


class HybridEngine:
    """llama.cpp for a lone stream, continuous batching under concurrency.

    llama.cpp decodes one quantized sequence faster than a Python-driven
    transformers step, but cannot batch; the transformers engine batches 8
    streams into one forward. So a request goes to llama.cpp only when nothing
    else is running or waiting anywhere; otherwise it joins the batch. Adapter
    requests always go to the transformers engine."""

    def __init__(self, single, batch):
        self.single, self.batch = single, batch
        self.adapters = batch.adapters
        self.max_batch = batch.max_batch
        self._lock = threading.Lock()

    def start(self) -> "HybridEngine":
        return self

    def stop(self) -> None:
        self.single.stop()
        self.batch.stop()

    def submit(self, req: GenRequest) -> None:
        with self._lock:
            idle = (self.single.active + self.single.waiting + self.batch.active + self.batch.waiting) == 0
            target = self.single if idle and req.adapter is None else self.batch
            if target is self.single:
                self.single._busy = 1   # claim it now so a concurrent submit goes to the batch
            target.submit(req)

    @property
    def waiting(self) -> int:
        return self.single.waiting + self.batch.waiting

    @property
    def active(self) -> int:
        return self.single.active + self.batch.active

    @property
    def stats(self) -> dict:
        return {k: self.single.stats.get(k, 0) + self.batch.stats.get(k, 0) for k in self.batch.stats}
