"""Model registry and loading: the embedded default, tiny test models, local folders and GGUF files."""
from medllm.models.registry import ModelRef, list_models, resolve, ensure_local
from medllm.models.loading import (load_causal_lm, load_tokenizer, model_device, pick_device, pick_dtype,
                                   stop_token_ids)
from medllm.models.hardware import cpu_supports_bf16

__all__ = [
    "ModelRef", "list_models", "resolve", "ensure_local",
    "load_causal_lm", "load_tokenizer", "pick_dtype", "pick_device", "cpu_supports_bf16",
    "model_device", "stop_token_ids",
]
