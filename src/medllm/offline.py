"""Offline guard: medllm never talks to a model hub or telemetry endpoint.

Imported first by ``medllm/__init__.py`` so that every entry point (CLI, tests,
library use) sets these before transformers/datasets/huggingface_hub read them.
"""
from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "0"),
    "DO_NOT_TRACK": "1",
    "DISABLE_TELEMETRY": "1",
    "WANDB_DISABLED": "true",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM", "false"),
    # gradio/streamlit-style analytics off if anything pulls them in
    "GRADIO_ANALYTICS_ENABLED": "False",
}


def enforce_offline() -> None:
    """Set the offline/no-telemetry environment (explicit user values for
    progress bars and tokenizer parallelism are kept; everything else is forced)."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value


enforce_offline()
