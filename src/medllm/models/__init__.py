"""Model registry and loading: the embedded default, tiny test models, local folders and GGUF files."""
from medllm.models.registry import ModelRef, list_models, resolve, ensure_local
from medllm.models.loading import (load_causal_lm, load_tokenizer, model_device, pick_device, pick_dtype,
                                   stop_token_ids)
from medllm.models.hardware import cpu_supports_bf16
from medllm.models.lineage import is_lineage, materialize_merged, read_lineage

__all__ = [
    "ModelRef", "list_models", "resolve", "ensure_local",
    "load_causal_lm", "load_tokenizer", "pick_dtype", "pick_device", "cpu_supports_bf16",
    "model_device", "stop_token_ids", "is_lineage", "materialize_merged", "read_lineage",
]
