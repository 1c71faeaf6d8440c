"""In-process transformers engine with continuous batching.

One worker thread owns the model. Requests wait in a bounded queue; at every
decode step the worker admits waiting requests (prefilled together, then their
KV caches are left-padded and concatenated onto the running batch), runs ONE
batched forward for all running sequences, samples each row with its own
parameters and drops finished rows. So a new request never waits for a whole
batch to finish, and 8 concurrent streams cost about one forward per token.

Why our own loop rather than transformers' ``generate_batch`` /
ContinuousBatchingManager: that manager targets paged attention on GPUs; here a
DynamicCache per batch is simple, exact (left padding + explicit position ids)
and supports per-row sampling, per-row LoRA adapters (PEFT ``adapter_names``)
and cancellation.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from medllm.serve.sampling import RowSampler, SamplingParams

log = logging.getLogger(__name__)

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch


class QueueFull(RuntimeError):
    """The engine's waiting queue is at capacity (the server answers 429)."""


@dataclass
class Event:
    kind: str                     # "delta" | "done" | "error"
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class GenRequest:
    prompt_ids: list[int]
    params: SamplingParams
    on_event: Callable[[Event], None]   # called from the engine thread
    adapter: str | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted_at: float = field(default_factory=time.monotonic)


class _Seq:
    """A running sequence: its ids, sampler and streaming-detokenizer state."""

    def __init__(self, req: GenRequest, tokenizer, device: str):
        self.req = req
        self.sampler = RowSampler(req.params, device)
        self.ids = torch.tensor(req.prompt_ids, dtype=torch.long)
        self.generated: list[int] = []
        self.emitted = 0           # characters of decoded text already sent
        self.text = ""             # decoded text of generated[:r_off]
        self.p_off = self.r_off = 0
        self.tokenizer = tokenizer
        self.hold = max((len(s) for s in req.params.stop), default=1) - 1

    @property
    def last_token(self) -> int:
        return self.generated[-1]


class BatchingEngine:
    """Continuous-batching generator over a (optionally PEFT-wrapped) causal LM."""

    def __init__(self, model, tokenizer, *, max_batch: int = 8, max_queue: int = 64,
                 max_context: int | None = None, adapters: tuple[str, ...] = ()):
        self.model = model
        self.tokenizer = tokenizer
        from medllm.models import model_device

        # where the inputs must go: cuda:N under a launcher, the first shard with device_map
        self.device = model_device(model)
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.adapters = set(adapters)
        cfg = getattr(model, "config", None)
        self.max_context = max_context or getattr(cfg, "max_position_embeddings", 2048)
        self.stop_ids = _stop_token_ids(model, tokenizer)
        self._pending: deque[GenRequest] = deque()
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        # batch state (worker thread only)
        self._seqs: list[_Seq] = []
        self._cache = None
        self._mask: torch.Tensor | None = None
        # counters for /metrics
        self.stats = {"requests_total": 0, "tokens_generated_total": 0, "prompt_tokens_total": 0,
                      "decode_steps_total": 0, "rejected_queue_full_total": 0, "errors_total": 0}

    # ------------------------------------------------------------ public
    def start(self) -> "BatchingEngine":
        if not self._running:
            self._running = True
            self._thread = threading.Thread(target=self._loop, name="medllm-engine", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def submit(self, req: GenRequest) -> None:
        if req.adapter is not None and req.adapter not in self.adapters:
            raise ValueError(f"unknown adapter {req.adapter!r}")
        with self._cond:
            # capacity = a full batch running + max_queue waiting; beyond that, 429
            if len(self._pending) >= self.max_queue or \
                    len(self._pending) + len(self._seqs) >= self.max_queue + self.max_batch:
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
        return len(self._seqs)

    # ------------------------------------------------------------ worker
    def _loop(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            with self._cond:
                while self._running and not self._pending and not self._seqs:
                    self._cond.wait()
                if not self._running:
                    break
                admit = []
                while self._pending and len(self._seqs) + len(admit) < self.max_batch:
                    req = self._pending.popleft()
                    if req.cancelled.is_set():
                        req.on_event(Event("done", finish_reason="cancelled", prompt_tokens=len(req.prompt_ids)))
                    else:
                        admit.append(req)
            try:
                with torch.inference_mode():
                    if admit:
                        self._prefill(admit)
                    if self._seqs:
                        self._decode_step()
            except Exception as exc:  # one bad step must not kill the server
                log.exception("engine step failed")
                self.stats["errors_total"] += 1
                running = {id(s.req) for s in self._seqs}
                for req in [s.req for s in self._seqs] + [r for r in admit if id(r) not in running]:
                    req.on_event(Event("error", text=f"generation failed: {type(exc).__name__}"))
                self._reset_batch()
        for seq in self._seqs:
            seq.req.on_event(Event("error", text="server shutting down"))
        self._reset_batch()

    def _reset_batch(self) -> None:
        self._seqs, self._cache, self._mask = [], None, None

    def _forward(self, input_ids, mask, cache, adapters: list[str | None], keep_last: bool):
        from transformers import DynamicCache

        from medllm.models.kv_cache import cache_kwarg, output_cache

        if cache is None:
            cache = DynamicCache(config=self.model.config)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1]:]
        kwargs = dict(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                      **{cache_kwarg(self.model): cache})
        if keep_last:
            kwargs["logits_to_keep"] = 1
        if self.adapters:
            kwargs["adapter_names"] = [a or BASE_ADAPTER for a in adapters]
        out = self.model(**kwargs)
        return out.logits[:, -1, :], output_cache(out)

    def _prefill(self, reqs: list[GenRequest]) -> None:
        seqs = [_Seq(r, self.tokenizer, self.device) for r in reqs]
        width = max(len(s.ids) for s in seqs)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s.ids):] = s.ids
            mask[i, width - len(s.ids):] = 1
            self.stats["prompt_tokens_total"] += len(s.ids)
        logits, cache = self._forward(ids.to(self.device), mask.to(self.device), None,
                                      [s.req.adapter for s in seqs], keep_last=True)
        self._merge(seqs, cache, mask.to(self.device))
        self._sample_and_emit(seqs, logits)

    def _merge(self, seqs: list[_Seq], cache, mask: torch.Tensor) -> None:
        """Append new rows to the running batch, left-padding whichever side is shorter."""
        if self._cache is None:
            self._seqs, self._cache, self._mask = list(seqs), cache, mask
            return
        old_len, new_len = self._mask.shape[1], mask.shape[1]
        width = max(old_len, new_len)
        for old_layer, new_layer in zip(self._cache.layers, cache.layers):
            for attr in ("keys", "values"):
                a, b = getattr(old_layer, attr), getattr(new_layer, attr)
                a = F.pad(a, (0, 0, width - old_len, 0))
                b = F.pad(b, (0, 0, width - new_len, 0))
                setattr(old_layer, attr, torch.cat([a, b], dim=0))
        self._mask = torch.cat([F.pad(self._mask, (width - old_len, 0)), F.pad(mask, (width - new_len, 0))])
        self._seqs.extend(seqs)

    def _decode_step(self) -> None:
        ids = torch.tensor([[s.last_token] for s in self._seqs], dtype=torch.long, device=self.device)
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(self._seqs), 1))], dim=1)
        logits, self._cache = self._forward(ids, self._mask, self._cache,
                                            [s.req.adapter for s in self._seqs], keep_last=False)
        self.stats["decode_steps_total"] += 1
        self._sample_and_emit(self._seqs, logits)

    def _sample_and_emit(self, seqs: list[_Seq], logits: torch.Tensor) -> None:
        finished: set[int] = set()
        for row, seq in enumerate(seqs):
            if seq.req.cancelled.is_set():
                finished.add(id(seq))
                seq.req.on_event(Event("done", finish_reason="cancelled", prompt_tokens=len(seq.ids),
                                       completion_tokens=len(seq.generated)))
                continue
            seen = torch.cat([seq.ids, torch.tensor(seq.generated, dtype=torch.long)])
            token = seq.sampler.next_token(logits[row], seen.to(logits.device))
            if self._advance(seq, token):
                finished.add(id(seq))
        if finished:
            self._drop(finished)

    def _detokenize(self, seq: _Seq) -> str:
        """Incremental decode: only the tokens since the last complete character are
        decoded each step (decoding the whole answer per token is O(n^2))."""
        gen = seq.generated
        prefix = self.tokenizer.decode(gen[seq.p_off:seq.r_off], skip_special_tokens=True)
        new = self.tokenizer.decode(gen[seq.p_off:], skip_special_tokens=True)
        if len(new) > len(prefix) and not new.endswith("\ufffd"):
            seq.text += new[len(prefix):]
            seq.p_off, seq.r_off = seq.r_off, len(gen)
            return seq.text
        return seq.text + new[len(prefix):]   # provisional tail (may be an incomplete character)

    def _advance(self, seq: _Seq, token: int) -> bool:
        """Record one token, stream new text; return True when the sequence is finished."""
        params = seq.req.params
        is_stop_token = token in self.stop_ids and not params.ignore_eos
        if not is_stop_token:
            seq.generated.append(token)
            self.stats["tokens_generated_total"] += 1
        text = self._detokenize(seq)
        reason = None
        if is_stop_token:
            reason = "stop"
        for stop in params.stop:
            cut = text.find(stop, max(0, seq.emitted - len(stop)))
            if stop and cut != -1:
                text, reason = text[:cut], "stop"
        if reason is None and len(seq.generated) >= params.max_tokens:
            reason = "length"
        if reason is None and len(seq.ids) + len(seq.generated) >= self.max_context:
            reason = "length"
        if is_stop_token:
            seq.generated.append(token)  # fed to nobody: the row is dropped below
        if reason is None:
            safe = len(text) - seq.hold
            if text.endswith("\ufffd"):   # incomplete multi-byte character: wait
                safe = min(safe, len(text) - 1)
            if safe > seq.emitted:
                seq.req.on_event(Event("delta", text=text[seq.emitted:safe]))
                seq.emitted = safe
            return False
        if len(text) > seq.emitted:
            seq.req.on_event(Event("delta", text=text[seq.emitted:].rstrip("\ufffd")))
        n_completion = len(seq.generated) - (1 if is_stop_token else 0)
        seq.req.on_event(Event("done", finish_reason=reason, prompt_tokens=len(seq.ids),
                               completion_tokens=n_completion))
        return True

    def _drop(self, finished: set[int]) -> None:
        keep = [i for i, s in enumerate(self._seqs) if id(s) not in finished]
        # rows admitted in this step's prefill are already in self._seqs; rows of
        # a failed admission never reach here
        if not keep:
            self._reset_batch()
            return
        idx = torch.tensor(keep, device=self.device)
        self._seqs = [self._seqs[i] for i in keep]
        self._mask = self._mask[idx]
        # columns that are padding for every remaining row can go
        used = self._mask.sum(0).nonzero()
        first = int(used[0]) if len(used) else 0
        self._mask = self._mask[:, first:]
        for layer in self._cache.layers:
            layer.keys = layer.keys[idx, :, first:, :]
            layer.values = layer.values[idx, :, first:, :]


def _stop_token_ids(model, tokenizer) -> set[int]:
    from medllm.models import stop_token_ids

    ids = set(stop_token_ids(model, tokenizer))   # every eos incl. generation_config's (Llama-3 <|eot_id|>)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>") if hasattr(tokenizer, "convert_tokens_to_ids") else None
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return ids
