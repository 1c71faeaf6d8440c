"""Shared scaffolding for bench/ scripts: machine info, versions, load, peak RSS, JSON out.

A benchmark compares medllm with the reference tool side by side in one process run
and reports ratios; absolute times on a shared 2-core machine mean little alone.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
_LOAD_AT_IMPORT = os.getloadavg()  # the benchmark's start, not the time its result is written


def environment() -> dict:
    import medllm  # noqa: F401  (offline guard)
    from medllm.models.hardware import machine_info
    from medllm.runs.provenance import git_revision, package_versions

    return {"machine": machine_info(), "versions": package_versions(), "git": git_revision(),
            "loadavg_start": _LOAD_AT_IMPORT, "argv": sys.argv}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(store: dict, key: str):
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    yield
    store[key] = {"seconds": round(time.perf_counter() - t0, 3), "loadavg_1m_start": load0,
                  "loadavg_1m_end": os.getloadavg()[0]}


def write_result(name: str, result: dict) -> Path:
    from medllm.io import atomic_write_json

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    payload = {"benchmark": name, "environment": environment(), **result}
    payload["environment"]["loadavg_end"] = os.getloadavg()
    atomic_write_json(out, payload)
    print(json.dumps({k: v for k, v in result.items() if k != "details"}, indent=2, default=str))
    print(f"results written to {out}")
    return out


def ratio(ours: float, theirs: float) -> float | None:
    return round(ours / theirs, 3) if theirs else None
