"""The console command re-executes itself once with glibc malloc tuned (medllm.allocator)."""
import os
import platform
import sys

import pytest

from medllm import allocator

glibc_linux = pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
                                 reason="glibc tunables exist on Linux/glibc only")


@glibc_linux
def test_wanted_respects_the_user_and_the_opt_out():
    assert allocator.wanted({}) == allocator.TUNABLES == "glibc.malloc.mmap_threshold=4194304"
    assert allocator.wanted({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) is None   # the user's own wins
    assert allocator.wanted({"MEDLLM_MALLOC": "system"}) is None
    assert allocator.wanted({"MEDLLM_MALLOC_TUNED": "1"}) is None                     # at most once


@glibc_linux
def test_reexec_keeps_argv_and_environment(monkeypatch):
    calls = []
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv("MEDLLM_MALLOC_TUNED", raising=False)
    monkeypatch.delenv("MEDLLM_MALLOC", raising=False)
    monkeypatch.setenv("RANK", "1")   # e.g. set by accelerate for a DDP child
    monkeypatch.setattr(os, "execve", lambda exe, cmd, env: calls.append((exe, cmd, env)))
    allocator.reexec_with_tuned_malloc(["train", "sft", "lr=1e-4"])
    (exe, cmd, env), = calls
    assert exe == sys.executable and cmd == [sys.executable, "-m", "medllm", "train", "sft", "lr=1e-4"]
    assert env["GLIBC_TUNABLES"] == allocator.TUNABLES and env["RANK"] == "1" and env["MEDLLM_MALLOC_TUNED"] == "1"


def test_importing_the_cli_never_reexecutes(monkeypatch):
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("re-exec on import"))
    import importlib

    import medllm.cli.main as cli

    importlib.reload(cli)


@glibc_linux
def test_release_free_heap_gives_freed_heap_pages_back():
    """Freed blocks in the middle of the heap stay resident until released (the creep that
    memory_fit.heap_trim_callback stops); a live block at the top keeps a plain top-trim out."""
    import ctypes

    from medllm.train.memory_fit import resident_bytes

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    blocks = []
    for _ in range(3000):                     # 64 KiB blocks: below the mmap threshold, from the heap
        p = libc.malloc(64 * 1024)
        libc.memset(p, 1, 64 * 1024)          # touched: resident
        blocks.append(p)
    for p in blocks[:-1]:
        libc.free(p)
    before = resident_bytes()
    assert allocator.release_free_heap()
    after = resident_bytes()
    libc.free(blocks[-1])
    assert before - after > 100e6, (before, after)   # ~190 MB were free but resident


def test_heap_trim_callback_trims_only_above_the_mark(monkeypatch):
    from medllm.train import memory_fit

    calls = []
    monkeypatch.setattr(allocator, "release_free_heap", lambda: calls.append(1) or True)
    rss = {"now": 3.0e9}
    monkeypatch.setattr(memory_fit, "resident_bytes", lambda: rss["now"])
    plan = {}
    cb = memory_fit.heap_trim_callback(6.0, plan)       # mark: 6.0 - 1.5 GB
    cb.on_step_end(None, None, None)
    assert not calls
    rss["now"] = 4.6e9
    for _ in range(2 * memory_fit.TRIM_MIN_STEPS):      # above the mark: once, then not for TRIM_MIN_STEPS steps
        cb.on_step_end(None, None, None)
    assert len(calls) == 2 and plan["heap_trims"] == 2
