"""Merged Hugging Face export: base + LoRA adapter -> one plain safetensors folder
(config, tokenizer, chat template, generation config) that transformers and vLLM load
without peft or medllm."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from medllm.export.resolve import ExportError

log = logging.getLogger(__name__)

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


def load_merged(model_dir: str | Path, adapter: str | Path | None = None):
    """The model in fp32 with ``adapter`` (if any) merged into its weights.

    fp32 on purpose: merging LoRA deltas into bf16 weights rounds them away, and the
    exporters cast to their target precision afterwards anyway."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, use_safetensors=True,
                                                 trust_remote_code=False)
    if adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ExportError(f"cannot merge adapter {adapter} into {model_dir}: {exc}") from exc
    model.eval()
    return model


def _recorded_dtype(model_dir: Path) -> str:
    """The dtype the base model's config.json records (loading overwrites it in memory)."""
    cfg = json.loads((model_dir / "config.json").read_text())
    recorded = str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")
    return _DTYPES.get(recorded, "float32")


def export_hf(model_dir: str | Path, out_dir: str | Path, *, adapter: str | Path | None = None,
              dtype: str = "auto", source: dict | None = None) -> Path:
    """Write the (merged) model to ``out_dir`` as a standalone HF folder, atomically.

    ``dtype``: ``auto`` keeps the base model's recorded dtype; or float32/bfloat16/float16.
    A ``medllm_manifest.json`` with every file's sha256 is written last."""
    import torch

    from medllm.io import atomic_dir
    from medllm.models.convert import write_manifest
    from medllm.models.loading import load_tokenizer

    model_dir = Path(model_dir)
    if dtype != "auto" and dtype not in _DTYPES:
        raise ExportError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    target = _DTYPES.get(dtype) or _recorded_dtype(model_dir)
    model = load_merged(model_dir, adapter)
    model = model.to(getattr(torch, target))
    tok = load_tokenizer(model_dir)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_manifest(tmp, {"type": "export-hf", "base": str(model_dir),
                             "adapter": str(adapter) if adapter else None, "dtype": target, **(source or {})})
    log.info("merged HF model written to %s (%s)", out_dir, target)
    return out_dir
