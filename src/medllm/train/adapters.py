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
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise AdapterError("qlora needs a 4-bit quantized base; bitsandbytes provides it only on a CUDA GPU here. "
                           "On this CPU use adapter.method: lora (same adapter on a bf16-autocast base).")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise AdapterError("qlora needs the bitsandbytes package: pip install bitsandbytes")


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


def save_outputs(model, tok, stage_dir: Path, *, merge: bool = True) -> tuple[Path, Path | None]:
    """Write ``adapter/`` (PEFT only) and ``merged/`` (full safetensors + tokenizer), atomically.

    ``merge=False`` (stacking) still writes merged/ so the next stage has one plain model to
    start from, and keeps adapter/ so the stage's delta stays separable."""
    from peft import PeftModel

    from medllm.io import atomic_dir

    adapter_dir = None
    if isinstance(model, PeftModel):
        adapter_dir = stage_dir / "adapter"
        with atomic_dir(adapter_dir) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
        plain = model.merge_and_unload()
    else:
        plain = model
    merged = stage_dir / "merged"
    with atomic_dir(merged) as tmp:
        plain.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    if not merge:
        log.info("adapter kept separate in %s (stacked); merged/ written for the next stage", adapter_dir)
    return merged, adapter_dir
