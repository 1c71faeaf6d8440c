"""glibc malloc settings for the ``medllm`` command, applied by re-executing it once.

Why: a CPU training step allocates and frees many large tensors (activations, bf16 weight
copies under autocast, logits chunks). glibc serves each one above its mmap threshold with a
fresh ``mmap`` and returns it with ``munmap``, so every step faults its memory in again, 4 KiB
page by page, and the kernel zeroes each page. Measured on the demo's SFT (SmolLM2-135M, full
fine-tuning, 60 steps, 2-core AMD EPYC without AMX, docs/training.md "Allocator"): 12 million
minor page faults and 62 s of kernel time in a 290 s run. ``glibc.malloc.hugetlb=1`` makes
malloc ask for transparent huge pages (2 MiB, ``madvise``), which removes most of those faults
without keeping any memory that the program frees. ``glibc.malloc.mmap_threshold=4194304`` fixes
the mmap threshold at 4 MiB: by default glibc raises it after each freed mmap chunk (up to 32 MiB),
so ever bigger tensors come from the heap and the heap's high-water mark creeps up through a
run. Measured on 100 demo SFT steps: same speed, peak 6.23 -> 5.97 GB; a 1 MiB threshold held
5.63 GB but ran 0.89x (22M page faults).

The tunables are read by the dynamic loader at process start only, hence the re-exec. The
user's own ``GLIBC_TUNABLES`` always wins; ``MEDLLM_MALLOC=system`` switches this off. Only the
command-line entry point does it (``medllm.cli.main.run``): importing medllm never re-executes.
"""
from __future__ import annotations

import os
import platform
import sys

TUNABLES = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=4194304"
_MARK = "MEDLLM_MALLOC_TUNED"  # set before the re-exec, so it happens at most once


def wanted(environ=None) -> str | None:
    """The ``GLIBC_TUNABLES`` value to start with, or None to leave the process alone."""
    env = os.environ if environ is None else environ
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    if env.get("GLIBC_TUNABLES") is not None or env.get(_MARK) or env.get("MEDLLM_MALLOC", "").lower() == "system":
        return None
    return TUNABLES


def reexec_with_tuned_malloc(argv: list[str]) -> None:
    """Replace this process by the same command under ``TUNABLES`` (returns when not wanted
    or when the re-exec is impossible; the command then runs with glibc's defaults)."""
    value = wanted()
    if value is None:
        return
    env = dict(os.environ, GLIBC_TUNABLES=value, **{_MARK: "1"})
    cmd = [sys.executable, "-m", "medllm", *argv]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, cmd, env)
    except OSError:
        return
