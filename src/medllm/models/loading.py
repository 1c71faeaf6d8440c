"""Load tokenizers and causal LMs from any model reference, safely and offline."""
from __future__ import annotations

from pathlib import Path

from medllm.models.hardware import cpu_supports_bf16
from medllm.models.registry import ModelRef, ensure_local, resolve


class UnsafeWeights(ValueError):
    pass


def pick_device(device: str = "auto") -> str:
    from medllm.models.hardware import local_device

    return local_device() if device == "auto" else device


DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


def dtype_name(dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"`` (the spelling of recipes and model.json)."""
    return str(dtype).replace("torch.", "")


def pick_dtype(dtype: str = "auto", device: str = "cpu", *, for_training: bool = False):
    """``auto``: bf16 on GPUs that support it (fp16 on older ones); on CPU fp32 master weights
    for training (bf16 runs under autocast) and bf16 for inference where AMX/AVX512-BF16 exist."""
    import torch

    from medllm.models.hardware import accelerator_supports_bf16

    if dtype != "auto":
        return getattr(torch, DTYPES[str(dtype).replace("torch.", "")])
    if str(device).startswith("cuda"):
        return torch.bfloat16 if accelerator_supports_bf16() else torch.float16
    if for_training:
        return torch.float32
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def nf4_config(compute_dtype):
    """QLoRA's 4-bit base: NF4 with double quantization, matmuls in ``compute_dtype``."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def _check_safe(folder: Path) -> None:
    from medllm.models.lineage import is_lineage

    if is_lineage(folder):
        return  # base and adapters are checked when they load
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        return  # adapter folders are checked by peft loading (safetensors only below)
    if not any(folder.glob("*.safetensors")):
        pickles = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        hint = f" (found pickle files {pickles}; convert them to safetensors first)" if pickles else ""
        raise UnsafeWeights(f"{folder}: no .safetensors weights{hint}. medllm loads only safetensors or GGUF.")


def model_folder(spec: str | Path | ModelRef) -> Path:
    """The local folder of ``spec``: a plain model folder, or a stage folder with a lineage
    (``model.json``; see ``medllm.models.lineage``)."""
    folder = ensure_local(spec)
    _check_safe(folder)
    return folder


def load_tokenizer(spec: str | Path | ModelRef, *, chat_template: str | Path | None = None,
                   max_seq_len: int | None = None):
    """The tokenizer of ``spec``; ``chat_template`` (a Jinja file) replaces the model's own,
    ``max_seq_len`` caps every truncating tokenization."""
    from transformers import AutoTokenizer

    from medllm.models.lineage import is_lineage, lineage_tokenizer_dir

    folder = ensure_local(spec)
    if is_lineage(folder):
        folder = lineage_tokenizer_dir(folder)
    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if chat_template is not None:
        path = Path(chat_template).expanduser()
        try:
            tok.chat_template = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FileNotFoundError(f"model.chat_template: cannot read {path} ({exc.strerror})") from None
    if max_seq_len:
        tok.model_max_length = int(max_seq_len)
    return tok


def _from_pretrained(folder: Path, torch_dtype, *, quantize: str | None, device: str | None, cls=None, **extra):
    from transformers import AutoModelForCausalLM

    cls = cls or AutoModelForCausalLM
    kw: dict = dict(dtype=torch_dtype, use_safetensors=True, trust_remote_code=False, **extra)
    if quantize == "nf4":
        from medllm.models.hardware import local_device

        # a quantized model is placed at load time: on this rank's own device
        kw.update(quantization_config=nf4_config(torch_dtype), device_map={"": device or local_device()})
    elif quantize is not None:
        raise ValueError(f"unknown quantization {quantize!r} (have: nf4)")
    return cls.from_pretrained(folder, **kw)


def _merge_adapters(model, adapters: list[str]):
    """Apply each PEFT adapter in order and fold it into the weights (in memory)."""
    from peft import PeftModel

    for a in adapters:
        model = PeftModel.from_pretrained(model, str(a)).merge_and_unload()
    return model


def load_causal_lm(spec: str | Path | ModelRef, *, dtype: str = "auto", device: str | None = "auto",
                   for_training: bool = False, adapter: str | Path | None = None,
                   chat_template: str | Path | None = None, max_seq_len: int | None = None,
                   quantize: str | None = None, keep_last_adapter: bool = False):
    """Return ``(model, tokenizer)``.

    ``spec`` is any model reference or a stage folder with a lineage (its base is loaded in
    ``dtype`` and its adapters merged in order; ``keep_last_adapter`` keeps the last one as a
    live PEFT adapter). ``adapter`` is a PEFT adapter folder applied on top. ``device=None``
    leaves the model where it loaded (CPU) for the trainer/accelerate to place on each rank's
    device. ``quantize="nf4"`` loads the base 4-bit (QLoRA) with ``dtype`` as compute dtype."""
    from medllm.models.lineage import is_lineage, merged_dir, read_lineage

    ref = spec if isinstance(spec, ModelRef) else resolve(spec)
    folder = model_folder(ref)
    dev = pick_device(device) if device is not None else None
    torch_dtype = pick_dtype(dtype, dev or pick_device("auto"), for_training=for_training)
    adapters: list[str] = []
    base = folder
    if is_lineage(folder):
        done = merged_dir(folder)
        lin = read_lineage(folder)
        if done is not None and not keep_last_adapter:
            base = done  # already materialised: no merge needed
        else:
            base, adapters = Path(lin["base"]), list(lin["adapters"])
    model = _from_pretrained(base, torch_dtype, quantize=quantize, device=dev)
    live = adapters.pop() if keep_last_adapter and adapters else None
    model = _merge_adapters(model, adapters)
    for extra in (live, adapter):
        if extra is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(extra), is_trainable=for_training) \
                if not hasattr(model, "peft_config") else _load_more(model, extra)
    if dev is not None and quantize is None:
        model.to(dev)
    if not for_training:
        model.eval()
    contiguous_head_input(model)
    tok = load_tokenizer(folder, chat_template=chat_template, max_seq_len=max_seq_len)
    return model, tok


def _contiguous_first(module, args):
    x = args[0] if args else None
    if x is not None and hasattr(x, "is_contiguous") and not x.is_contiguous():
        return (x.contiguous(), *args[1:])
    return None


def contiguous_head_input(model) -> None:
    """Hand the output head a contiguous input.

    Why: ``generate`` applies the head to ``hidden[:, -1:, :]``, a strided slice of a batch. For a
    3-D strided input whose weight does not require grad (a model merged from adapters, or
    frozen), torch 2.13's ``F.linear`` on CPU takes the batched-matmul path and copies the weight
    once per row: SmolLM2's 49K x 576 head at 32 rows took 1.5 s per call instead of 8 ms
    (2026-12-07), i.e. ~1.5 s at the start of every generation batch. Copying the slice costs
    32 x 576 values."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and not getattr(head, "_medllm_contiguous_input", False):
        head.register_forward_pre_hook(_contiguous_first)
        head._medllm_contiguous_input = True


def _load_more(model, adapter):
    name = Path(adapter).parent.name or "extra"
    model.load_adapter(str(adapter), adapter_name=name)
    model.set_adapter(name)
    return model


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
