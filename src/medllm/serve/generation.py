"""Bridge between async request handlers and the engine thread: submit ``n``
sequences, receive their events on one asyncio queue, cancel on disconnect."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from medllm.serve.engine import Event, GenRequest, QueueFull
from medllm.serve.sampling import SamplingParams


@dataclass
class Choice:
    index: int
    text: str = ""
    finish_reason: str | None = None
    completion_tokens: int = 0
    prompt_tokens: int = 0
    error: str | None = None


@dataclass
class Generation:
    """``n`` sequences of one request; ``events()`` yields (index, Event) until all finish."""

    engine: object
    prompt_ids: list[int]
    params: list[SamplingParams]
    adapter: str | None
    choices: list[Choice] = field(default_factory=list)
    _reqs: list[GenRequest] = field(default_factory=list)

    def start(self) -> None:
        """Submit all sequences; raises QueueFull (nothing left running) when the queue is full."""
        loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._left = len(self.params)
        for i, p in enumerate(self.params):
            self.choices.append(Choice(i))

            def on_event(ev: Event, i=i) -> None:
                if ev.kind != "delta":
                    self._left -= 1          # engine thread only; read by the app for capacity
                loop.call_soon_threadsafe(self._queue.put_nowait, (i, ev))

            req = GenRequest(list(self.prompt_ids), p, on_event, adapter=self.adapter)
            try:
                self.engine.submit(req)
            except QueueFull:
                self.cancel()
                self._left = 0
                raise
            self._reqs.append(req)

    async def events(self):
        remaining = len(self._reqs)
        while remaining:
            i, ev = await self._queue.get()
            ch = self.choices[i]
            if ev.kind == "delta":
                ch.text += ev.text
            else:
                remaining -= 1
                ch.finish_reason = ev.finish_reason or ("error" if ev.kind == "error" else None)
                ch.prompt_tokens, ch.completion_tokens = ev.prompt_tokens, ev.completion_tokens
                if ev.kind == "error":
                    ch.error = ev.text
            yield i, ev

    async def run(self) -> list[Choice]:
        async for _ in self.events():
            pass
        return self.choices

    @property
    def finished(self) -> bool:
        """All sequences ended in the engine (even if no client read the events)."""
        return self._left <= 0

    def cancel(self) -> None:
        for r in self._reqs:
            r.cancelled.set()

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.choices)
