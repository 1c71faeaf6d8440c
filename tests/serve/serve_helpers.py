"""Helpers shared by the serving tests (not fixtures)."""
from __future__ import annotations

import json

from medllm.serve.loopback import LoopbackServer, free_port  # noqa: F401  (re-exported for the tests)


def sse_events(text: str) -> list:
    """Parse an SSE body into JSON payloads (``"[DONE]"`` kept as a string)."""
    out = []
    for block in text.split("\n\n"):
        block = block.strip()
        if block.startswith("data:"):
            payload = block[5:].strip()
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out
