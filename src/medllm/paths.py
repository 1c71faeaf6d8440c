"""Where medllm keeps its caches (converted models, tokenizers)."""
from __future__ import annotations

import os
from pathlib import Path


def medllm_home() -> Path:
    home = Path(os.environ.get("MEDLLM_HOME", Path.home() / ".cache" / "medllm")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def is_quiet() -> bool:
    """Quiet mode (CI, tests): no progress bars."""
    return os.environ.get("MEDLLM_QUIET", "0") not in ("", "0", "false", "False")


def apply_quiet() -> None:
    """Silence library progress bars too (transformers weight loading, hub, datasets)."""
    if not is_quiet():
        return
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass
