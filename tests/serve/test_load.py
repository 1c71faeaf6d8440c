"""Bounded load test on loopback: 32 concurrent streaming clients, 200 requests,
no 5xx; a small queue answers 429 beyond capacity and recovers."""
from __future__ import annotations

import asyncio
import time

import httpx

from medllm.config.serve import ServeConfig

from serve_helpers import sse_events


async def _stream_one(client: httpx.AsyncClient, i: int, max_tokens: int) -> tuple[int, str]:
    body = {"messages": [{"role": "user", "content": f"Question {i}: what causes fever?"}],
            "max_tokens": max_tokens + i % 3, "stream": True, "seed": i}
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        text = "".join([chunk async for chunk in r.aiter_text()])
        return r.status_code, text


async def _run(url: str, total: int, concurrency: int, max_tokens: int = 2) -> list[tuple[int, str]]:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def one(i):
            async with sem:
                return await _stream_one(client, i, max_tokens)
        return await asyncio.gather(*(one(i) for i in range(total)))


def test_32_concurrent_streams_200_requests_no_5xx(loopback):
    srv = loopback(ServeConfig(max_queue=256, rate_limit_per_minute=10_000))
    t0 = time.monotonic()
    results = asyncio.run(_run(srv.url, total=200, concurrency=32))
    elapsed = time.monotonic() - t0
    codes = [c for c, _ in results]
    assert codes.count(200) == 200, {c: codes.count(c) for c in set(codes)}
    for _, text in results:
        events = sse_events(text)
        assert events[-1] == "[DONE]" and not any("error" in e for e in events[:-1])
    assert elapsed < 240


def test_queue_full_gives_429_not_5xx(loopback):
    # capacity 2 running + 1 waiting: of 24 simultaneous requests, most must be turned away with 429
    srv = loopback(ServeConfig(max_batch=2, max_queue=1, rate_limit_per_minute=10_000))
    results = asyncio.run(_run(srv.url, total=24, concurrency=24, max_tokens=40))
    codes = [c for c, _ in results]
    assert not [c for c in codes if c >= 500]
    assert codes.count(429) >= 1 and codes.count(200) >= 1
    assert set(codes) <= {200, 429}
    # capacity comes back once the burst is over
    assert asyncio.run(_run(srv.url, total=1, concurrency=1))[0][0] == 200


def test_clients_that_disconnect_free_their_slots(loopback):
    """Streams abandoned mid-answer are cancelled in the engine and stop counting against capacity."""
    srv = loopback(ServeConfig(max_batch=1, max_queue=1, rate_limit_per_minute=10_000, max_completion_tokens=8000))
    # 8000 tokens each would keep both slots busy for minutes; only cancellation frees them in time
    body = {"messages": [{"role": "user", "content": "Tell me about the liver."}], "max_tokens": 8000,
            "stream": True, "temperature": 0, "repetition_penalty": 1.0}
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        for _ in range(2):   # fill the capacity (1 running + 1 waiting), then walk away
            with client.stream("POST", "/v1/chat/completions", json=body) as r:
                assert r.status_code == 200
                next(r.iter_text())
        deadline = time.monotonic() + 15
        while True:
            r = client.post("/v1/chat/completions", json={**body, "stream": False, "max_tokens": 2})
            if r.status_code == 200:
                break
            assert r.status_code == 429 and time.monotonic() < deadline
            time.sleep(0.2)
