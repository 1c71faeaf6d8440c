"""Merged Hugging Face export: base + LoRA adapter(s) -> one plain safetensors folder
(config, tokenizer, chat template, generation config) that transformers and vLLM load
without peft or medllm. The merge keeps the base model's dtype: an 8B bf16 base is
merged and written as 16 GB of bf16, never as a 32 GB fp32 copy."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from medllm.export.resolve import ExportError

log = logging.getLogger(__name__)

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


def adapters_list(adapter) -> list[Path]:
    """None / one folder / a list of stacked adapter folders -> list (applied in order)."""
    if adapter is None:
        return []
    if isinstance(adapter, (list, tuple)):
        return [Path(a) for a in adapter]
    return [Path(adapter)]


def recorded_dtype(model_dir: str | Path) -> str:
    """The dtype the model's config.json records (loading overwrites it in memory)."""
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    recorded = str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")
    return _DTYPES.get(recorded, "float32")


_recorded_dtype = recorded_dtype   # older name


def load_merged(model_dir: str | Path, adapter=None, *, dtype: str | None = None):
    """The model in ``dtype`` (default: the base's recorded dtype) with the adapter(s)
    merged into its weights, in order. PEFT computes each delta in fp32 and adds it to the
    weight in the weight's own dtype, so nothing larger than the base model is ever held."""
    import torch
    from transformers import AutoModelForCausalLM

    target = _DTYPES.get(dtype or "") or recorded_dtype(model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, target), use_safetensors=True,
                                                 trust_remote_code=False)
    for one in adapters_list(adapter):
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(one)).merge_and_unload()
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ExportError(f"cannot merge adapter {one} into {model_dir}: {exc}") from exc
    model.eval()
    return model


def merge_to_folder(model_dir: str | Path, adapters, out_dir: Path, *, dtype: str | None = None) -> Path:
    """Merged weights + config as safetensors in ``out_dir`` (an existing, empty folder)."""
    model = load_merged(model_dir, adapters, dtype=dtype)
    model.save_pretrained(out_dir, safe_serialization=True)
    del model
    return out_dir


def export_hf(model_dir: str | Path, out_dir: str | Path, *, adapter=None,
              dtype: str = "auto", source: dict | None = None) -> Path:
    """Write the (merged) model to ``out_dir`` as a standalone HF folder, atomically.

    ``dtype``: ``auto`` keeps the base model's recorded dtype; or float32/bfloat16/float16.
    A ``medllm_manifest.json`` with every file's sha256 is written last."""
    from medllm.io import atomic_dir
    from medllm.models.convert import write_manifest
    from medllm.models.loading import load_tokenizer

    model_dir = Path(model_dir)
    if dtype != "auto" and dtype not in _DTYPES:
        raise ExportError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    target = _DTYPES.get(dtype) or recorded_dtype(model_dir)
    model = load_merged(model_dir, adapter, dtype=target)
    tok = load_tokenizer(model_dir)
    adapters = [str(a) for a in adapters_list(adapter)]
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_manifest(tmp, {"type": "export-hf", "base": str(model_dir),
                             "adapter": adapters[0] if len(adapters) == 1 else (adapters or None),
                             "dtype": target, **(source or {})})
    log.info("merged HF model written to %s (%s)", out_dir, target)
    return out_dir
