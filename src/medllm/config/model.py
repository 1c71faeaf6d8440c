"""The ``model:`` section."""
from __future__ import annotations

from typing import Literal

from medllm.config.base import Section
from medllm.models.registry import DEFAULT_MODEL


class ModelConfig(Section):
    name: str = DEFAULT_MODEL
    """Registry name (``smollm2-135m-instruct``, ``tiny-llama``), a local HF folder or a .gguf file."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    chat_template: str | None = None
    """Optional path to a Jinja chat template replacing the model's own."""
    max_seq_len: int | None = None
    """Override of the context length used for length checks (default: the model's)."""
