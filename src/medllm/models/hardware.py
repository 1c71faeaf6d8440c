"""What the machine can do fast: AMX/AVX-512 bf16 on CPU, CUDA."""
from __future__ import annotations

import functools
import os
import platform


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_supports_bf16() -> bool:
    """True when bf16 matmuls run natively (AMX-BF16 or AVX512-BF16).
    On such CPUs (Sapphire Rapids and later) bf16 is several times faster than fp32;
    elsewhere bf16 is emulated and slower, so we stay in fp32. MEDLLM_CPU_BF16=0/1 overrides."""
    forced = os.environ.get("MEDLLM_CPU_BF16")
    if forced is not None:
        return forced not in ("0", "false", "False", "")
    flags = cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def machine_info() -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_bf16": cpu_supports_bf16(),
        "amx": "amx_bf16" in cpu_flags(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    try:
        import psutil

        info["ram_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # psutil missing is not fatal for info
        pass
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def accelerator() -> str:
    """``"cuda"`` when a CUDA device is usable, else ``"cpu"`` (one place to ask, so tests
    can pretend to be on a GPU and prove that no path hard-codes a device or dtype)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def accelerator_supports_bf16() -> bool:
    import torch

    return accelerator() == "cuda" and torch.cuda.is_bf16_supported()


def local_device() -> str:
    """This process's device: ``cuda:LOCAL_RANK`` under accelerate/torchrun (every rank its
    own GPU, never all on GPU 0), ``cpu`` without a GPU."""
    if accelerator() != "cuda":
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
