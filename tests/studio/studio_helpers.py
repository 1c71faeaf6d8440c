"""Helpers for the studio tests (not fixtures): a loopback uvicorn server in a thread and the
short tiny-llama recipe the browser test edits configs/demo.yaml into."""
from __future__ import annotations

from medllm.serve.loopback import LoopbackServer


StudioServer = LoopbackServer   # the studio app on a loopback port, like the server tests
