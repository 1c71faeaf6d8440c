"""An ASGI app served by uvicorn on 127.0.0.1 in a background thread.

Used where a real socket is needed in the same process: benchmarks, and the tests of the
server, the gateway and the studio. Loopback only, so nothing is reachable from outside."""
from __future__ import annotations

import socket
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """``with LoopbackServer(app) as srv: httpx.get(srv.url + "/health")``."""

    def __init__(self, app, *, start_timeout: float = 30):
        import uvicorn

        self.app, self.start_timeout = app, start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    limit_concurrency=None, timeout_keep_alive=30))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + self.start_timeout
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)
