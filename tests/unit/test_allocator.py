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
