"""Adapters (full / LoRA / QLoRA) and the hand-over between stages: merge or stack, save."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class AdapterError(ValueError):
    pass


def linear_module_names(model) -> list[str]:
    """Leaf names of the Linear layers LoRA can target (the output head excluded)."""
    import torch.nn as nn

    head = model.get_output_embeddings()
    names = {name.rsplit(".", 1)[-1] for name, mod in model.named_modules()
             if isinstance(mod, nn.Linear) and mod is not head}
    return sorted(names)


def check_qlora_supported() -> None:
    """QLoRA needs bitsandbytes (0.50 quantizes to NF4 on CPU as well as on CUDA)."""
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise AdapterError("qlora needs the bitsandbytes package: pip install bitsandbytes==0.50.2")


def lora_config(adapter, model, *, task_type: str = "CAUSAL_LM"):
    """PEFT LoraConfig for ``adapter``; unknown target modules fail early with the list of valid ones."""
    from peft import LoraConfig

    targets = adapter.target_modules
    if targets != "all-linear":
        available = linear_module_names(model)
        missing = [t for t in targets if t not in available]
        if missing:
            raise AdapterError(f"LoRA target module(s) {missing} not found in the model; "
                               f"available: {', '.join(available)} (or 'all-linear')")
    return LoraConfig(r=adapter.r, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                      target_modules=targets, task_type=task_type, bias="none")


def wrap_model(model, adapter, *, task_type: str = "CAUSAL_LM"):
    """Return the trainable model: the model itself (full) or a PEFT model (lora/qlora)."""
    if adapter.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        if adapter.freeze_layers:
            freeze_bottom(model, adapter.freeze_layers)
        if adapter.freeze_embeddings:
            freeze_vocabulary(model)
        return model
    if adapter.method == "qlora":
        check_qlora_supported()
    from peft import get_peft_model

    peft_model = get_peft_model(model, lora_config(adapter, model, task_type=task_type))
    if task_type == "SEQ_CLS":  # the fresh score head must train too
        for name, p in peft_model.named_parameters():
            if "score" in name:
                p.requires_grad_(True)
    return peft_model


def freeze_vocabulary(model) -> None:
    """Freeze the input embeddings and the output head (the same tensor when tied)."""
    model.get_input_embeddings().requires_grad_(False)
    head = model.get_output_embeddings()
    if head is not None:
        head.requires_grad_(False)


def freeze_bottom(model, n: int) -> None:
    """Freeze the input embeddings and the first ``n`` decoder layers (nothing below layer ``n``
    then needs a gradient, so autograd never runs backward through them)."""
    layers = getattr(model.get_decoder(), "layers", None)
    if layers is None or n > len(layers):
        have = "no decoder layer list" if layers is None else f"{len(layers)} decoder layers"
        raise AdapterError(f"adapter.freeze_layers={n}: the model has {have}")
    model.get_input_embeddings().requires_grad_(False)
    for layer in layers[:n]:
        layer.requires_grad_(False)


def save_outputs(model, tok, stage_dir: Path, *, base_model: Path, dtype: str,
                 merged: bool = False) -> tuple[Path, Path | None]:
    """Write the stage's model, atomically, each folder with a sha256 manifest; return
    ``(model_dir, adapter_dir)``.

    PEFT (lora/qlora): ``adapter/`` (+ tokenizer) and ``model.json`` (the lineage: plain base +
    every unmerged adapter so far, see ``medllm.models.lineage``); ``model_dir`` is the stage
    folder, merged on load. ``merged=True`` (reward models, whose consumers load a classifier
    folder) also writes ``merged/`` in ``dtype``. Full fine-tuning: ``merged/`` is the model."""
    import shutil

    from peft import PeftModel

    from medllm.io import atomic_dir, atomic_write_json
    from medllm.models.convert import write_manifest
    from medllm.models.lineage import LINEAGE, lineage_after
    from medllm.models.loading import pick_dtype

    stage_dir = Path(stage_dir)
    if not isinstance(model, PeftModel):
        (stage_dir / LINEAGE).unlink(missing_ok=True)  # a re-run as a full stage: no stale lineage
        return _write_merged(model, tok, stage_dir, {"type": "full", "base": str(base_model)}), None
    adapter_dir = stage_dir / "adapter"
    with atomic_dir(adapter_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_manifest(tmp, {"type": "adapter", "base": str(base_model)})
    lineage = lineage_after(base_model, adapter_dir, dtype)
    if merged:
        plain = model.merge_and_unload().to(pick_dtype(dtype))
        _write_merged(plain, tok, stage_dir, {"type": "merged", "lineage": lineage})
        return stage_dir / "merged", adapter_dir
    shutil.rmtree(stage_dir / "merged", ignore_errors=True)  # an older merge of an earlier run is stale
    atomic_write_json(stage_dir / LINEAGE, lineage)
    log.info("%s: adapter kept, merged on load (lineage in %s)", stage_dir.name, stage_dir / LINEAGE)
    return stage_dir, adapter_dir


def _write_merged(plain, tok, stage_dir: Path, source: dict) -> Path:
    from medllm.io import atomic_dir
    from medllm.models.convert import write_manifest

    target = stage_dir / "merged"
    with atomic_dir(target) as tmp:
        plain.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_manifest(tmp, source)
    return target
