"""Load tokenizers and causal LMs from any model reference, safely and offline."""
from __future__ import annotations

from pathlib import Path

from medllm.models.hardware import cpu_supports_bf16
from medllm.models.registry import ModelRef, ensure_local, resolve


class UnsafeWeights(ValueError):
    pass


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str = "auto", device: str = "cpu", *, for_training: bool = False):
    """``auto``: bf16 on GPUs that support it; on CPU fp32 master weights for training
    (bf16 runs under autocast) and bf16 for inference where AMX/AVX512-BF16 exist."""
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype != "auto":
        return table[dtype]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if for_training:
        return torch.float32
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def _check_safe(folder: Path) -> None:
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        return  # adapter folders are checked by peft loading (safetensors only below)
    if not any(folder.glob("*.safetensors")):
        pickles = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        hint = f" (found pickle files {pickles}; convert them to safetensors first)" if pickles else ""
        raise UnsafeWeights(f"{folder}: no .safetensors weights{hint}. medllm loads only safetensors or GGUF.")


def model_folder(spec: str | Path | ModelRef) -> Path:
    folder = ensure_local(spec)
    _check_safe(folder)
    return folder


def load_tokenizer(spec: str | Path | ModelRef):
    from transformers import AutoTokenizer

    folder = ensure_local(spec)
    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(spec: str | Path | ModelRef, *, dtype: str = "auto", device: str = "auto",
                   for_training: bool = False, adapter: str | Path | None = None):
    """Return ``(model, tokenizer)``. ``adapter`` is a PEFT adapter folder applied on top."""
    from transformers import AutoModelForCausalLM

    ref = spec if isinstance(spec, ModelRef) else resolve(spec)
    folder = model_folder(ref)
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev, for_training=for_training)
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch_dtype, use_safetensors=True, trust_remote_code=False,
    )
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=for_training)
    model.to(dev)
    if not for_training:
        model.eval()
    tok = load_tokenizer(folder)
    return model, tok


def model_device(model):
    """The device a (possibly PEFT-wrapped or sharded) model's inputs must go to.

    Every caller that builds input tensors uses this instead of a fixed ``"cpu"``/``"cuda"``:
    with ``device_map`` or multi-GPU ranks the model is not on ``cuda:0``."""
    import torch

    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def stop_token_ids(model, tokenizer) -> list[int]:
    """Every token id that ends a turn: the tokenizer's eos plus each eos id of the model's
    ``generation_config`` (Llama-3-Instruct ends turns with ``<|eot_id|>``, not its eos).

    Pass the list as ``eos_token_id=`` to ``generate``; test ``in`` it to decide "finished"."""
    ids: list[int] = []

    def add(value):
        if value is None:
            return
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if v is not None and int(v) not in ids:
                ids.append(int(v))

    add(getattr(tokenizer, "eos_token_id", None))
    gen = getattr(model, "generation_config", None)
    add(getattr(gen, "eos_token_id", None) if gen is not None else None)
    cfg = getattr(model, "config", None)
    add(getattr(cfg, "eos_token_id", None) if cfg is not None else None)
    return ids
