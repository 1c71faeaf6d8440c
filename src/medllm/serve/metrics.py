"""Prometheus text exposition of the server's counters (format 0.0.4).

Hand-written because it is a dozen lines of text; prometheus_client would be a
dependency for that alone."""
from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()   # (endpoint, status) -> n
        self.latency_sum: Counter[str] = Counter()
        self.latency_count: Counter[str] = Counter()
        self.completion_tokens = 0
        self.prompt_tokens = 0
        self.red_flags = 0

    def observe(self, endpoint: str, status: int, seconds: float | None = None) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            if seconds is not None:
                self.latency_sum[endpoint] += seconds
                self.latency_count[endpoint] += 1

    def add_tokens(self, prompt: int, completion: int) -> None:
        with self._lock:
            self.prompt_tokens += prompt
            self.completion_tokens += completion

    def render(self, pool) -> str:
        lines = ["# HELP medllm_requests_total HTTP requests by endpoint and status.",
                 "# TYPE medllm_requests_total counter"]
        with self._lock:
            for (endpoint, status), n in sorted(self.requests.items()):
                lines.append(f'medllm_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
            lines += ["# HELP medllm_request_seconds Request latency (to the last token).",
                      "# TYPE medllm_request_seconds summary"]
            for endpoint in sorted(self.latency_count):
                lines.append(f'medllm_request_seconds_sum{{endpoint="{endpoint}"}} {self.latency_sum[endpoint]:.6f}')
                lines.append(f'medllm_request_seconds_count{{endpoint="{endpoint}"}} {self.latency_count[endpoint]}')
            lines += ["# TYPE medllm_prompt_tokens_total counter", f"medllm_prompt_tokens_total {self.prompt_tokens}",
                      "# TYPE medllm_completion_tokens_total counter",
                      f"medllm_completion_tokens_total {self.completion_tokens}",
                      "# TYPE medllm_red_flags_total counter", f"medllm_red_flags_total {self.red_flags}"]
        lines += ["# HELP medllm_queue_waiting Requests waiting for a batch slot.", "# TYPE medllm_queue_waiting gauge"]
        for sm in pool.served:
            lines.append(f'medllm_queue_waiting{{model="{sm.id}"}} {sm.engine.waiting}')
        lines += ["# HELP medllm_batch_active Sequences in the running batch.", "# TYPE medllm_batch_active gauge"]
        for sm in pool.served:
            lines.append(f'medllm_batch_active{{model="{sm.id}"}} {sm.engine.active}')
        lines += ["# TYPE medllm_engine_decode_steps_total counter"]
        for sm in pool.served:
            lines.append(f'medllm_engine_decode_steps_total{{model="{sm.id}"}} '
                         f'{sm.engine.stats.get("decode_steps_total", 0)}')
        return "\n".join(lines) + "\n"
