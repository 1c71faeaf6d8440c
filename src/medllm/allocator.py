"""glibc malloc settings for the ``medllm`` command, applied by re-executing it once.

Why: glibc raises its mmap threshold each time a freed mmapped chunk is returned (up to 32 MiB),
so through a long training run ever bigger tensors come from the heap and the heap's high-water
mark creeps up. ``glibc.malloc.mmap_threshold=4194304`` fixes it at 4 MiB. Measured on 100 demo
SFT steps: same speed, peak 6.23 -> 5.97 GB; a 1 MiB threshold held 5.63 GB but ran 0.89x.
Until 2026-12-07 the command also set ``glibc.malloc.hugetlb=1`` (1.20x on SFT when weights were
fp32 under autocast); with bf16 weights it no longer paid on SFT and cost the LoRA pretrain stage
1.20x, so it is gone (docs/training.md, "Allocator").

The tunables are read by the dynamic loader at process start only, hence the re-exec. The
user's own ``GLIBC_TUNABLES`` always wins; ``MEDLLM_MALLOC=system`` switches this off. Only the
command-line entry point does it (``medllm.cli.main.run``): importing medllm never re-executes.
"""
from __future__ import annotations

import functools
import os
import platform
import sys

# hugetlb=1 (transparent huge pages for malloc) was dropped 2026-12-07: with bf16 weights it no longer
# sped up SFT (40 demo steps: 304 tok/s without, 299 with) and it slowed the pretrain stage 1.20x
# (295 vs 246 tok/s; docs/training.md, "The tunables against the pretrain stage").
TUNABLES = "glibc.malloc.mmap_threshold=4194304"
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


def release_free_heap() -> bool:
    """Give the pages of free malloc chunks back to the OS (glibc ``malloc_trim(0)``, which
    also releases whole free pages inside the heap, not only at its top). False where the C
    library is not glibc."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
