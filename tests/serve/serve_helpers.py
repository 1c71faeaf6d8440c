"""Helpers shared by the serving tests (not fixtures)."""
from __future__ import annotations

import json
import socket
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    limit_concurrency=None, timeout_keep_alive=30))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=20)


def sse_events(text: str) -> list:
    """Parse an SSE body into JSON payloads (``"[DONE]"`` kept as a string)."""
    out = []
    for block in text.split("\n\n"):
        block = block.strip()
        if block.startswith("data:"):
            payload = block[5:].strip()
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out
