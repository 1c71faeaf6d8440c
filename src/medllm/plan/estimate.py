"""Per-stage accelerator memory, disk and time of a recipe, from the model's shape only.

Byte counts (per parameter unless stated), the usual mixed-precision accounting:

* weights: 2 (bf16/fp16) or 4 (fp32); QLoRA: NF4 with double quantization = 4.127 bits
  = 0.516 B for decoder linears, embedding / head / norms stay in the compute dtype;
* full fine-tuning, AdamW: weights 2 + gradients 2 + fp32 master 4 + Adam m, v 8 = 16
  (in fp32: 4 + 4 + 8 = 16 as well);
* LoRA adapters are fp32: 4 weight + 4 gradient + 8 Adam = 16 per adapter parameter;
* activations per token per layer, in the compute dtype: (4h + 2 q + 2 kv + 4 ff) elements
  (q = heads x head_dim, kv = kv_heads x head_dim; flash/SDPA attention, no s^2 scores);
  with gradient checkpointing only each layer's input (h) is kept, plus one layer's worth
  during its recomputation;
* logits: tokens x vocab x 12 B, the peak of PyTorch's cross-entropy backward: the fp32
  log-probabilities it keeps, the fp32 gradient of the NLL and the fp32 gradient of the
  logits (measured on CPU: 11.8 B per logit in fp32 and in bf16 weights alike, for a
  1024 x 49152 chunk). The causal-LM trainer (``train.fast_lm``) chunks the head over 1024
  target positions at a time and fuses it with the cross-entropy (``FUSED_LOGIT_BYTES``): one
  fp32 [chunk x vocab] buffer turned into the gradient in place, plus the half-precision logits
  or gradient beside it = 6 B (4 B in pure fp32; tests/plan/test_plan.py measures a fp32 stage
  within 25%);
* sharding: ZeRO-1 divides the optimizer by N, ZeRO-2 gradients + optimizer, ZeRO-3 and
  FSDP everything but activations; DDP replicates.

Time: FLOPs per token = 6 N (full), 4 N (LoRA/QLoRA: no weight gradients of the base),
+2 N with gradient checkpointing (the forward again), at ``mfu`` of a stated device peak.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from medllm.plan.shapes import ModelShape, PlanError, read_shape

GB = 1e9
NF4_BYTES = 4.127 / 8          # 4-bit NF4 + double-quantized block scales (bitsandbytes)
HEAD_CHUNK = 1024              # medllm.train.fast_lm.FastCausalLMTrainer.head_chunk
LOGIT_BYTES = 12               # per logit at the cross-entropy backward peak (see above)
FUSED_LOGIT_BYTES = 6          # per logit of the trainer's fused head chunk (see above)
CUDA_OVERHEAD_GB = 1.5         # CUDA context, cuBLAS workspace, allocator slack (GPU only)
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Sharding:
    kind: str = "single"       # single | ddp | zero1 | zero2 | zero3 | fsdp
    gpus: int = 1
    offload_optimizer: bool = False
    source: str = "no accelerate config"


@dataclass(frozen=True)
class Device:
    name: str = "H100 SXM (bf16 dense peak 989 TFLOPS)"
    peak_tflops: float = 989.0
    mfu: float = 0.4           # model FLOPs utilisation assumed for the time estimate
    mem_gb: float = 80.0
    accelerator: bool = True   # False: a CPU estimate (no CUDA overhead)


@dataclass
class StageEstimate:
    stage: str
    type: str
    method: str
    micro_batch: int
    seq_len: int
    memory_gb: dict[str, float]          # component -> GB per device
    total_gb: float
    fits: bool
    trainable_params: int
    tokens_per_step: int
    tokens_per_s: float
    seconds_per_step: float
    total_hours: float | None            # known when max_steps is set
    disk_gb: dict[str, float]
    warnings: list[str] = field(default_factory=list)


def _bytes(dtype: str) -> int:
    return DTYPE_BYTES.get(dtype, 2)


def lora_params(shape: ModelShape, r: int, targets) -> int:
    names = ALL_LINEAR if targets == "all-linear" else tuple(targets)
    dims = shape.linears()
    return shape.layers * sum(r * (dims[n][0] + dims[n][1]) for n in names if n in dims)


def activation_bytes_per_token(shape: ModelShape, layers_kept: float, dtype_bytes: int) -> float:
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    per_layer = 4 * shape.hidden + 2 * q + 2 * kv + 4 * shape.ff
    return per_layer * layers_kept * dtype_bytes


def frozen_params(shape: ModelShape, adapter) -> int:
    """Parameters that full fine-tuning leaves frozen (``adapter.freeze_embeddings`` / ``freeze_layers``):
    the vocabulary matrices and the first N decoder layers (their linears and two norms)."""
    if getattr(adapter, "method", "full") != "full":
        return 0
    n = 0
    if getattr(adapter, "freeze_embeddings", False) or getattr(adapter, "freeze_layers", 0):
        n += shape.vocab * shape.hidden
    if getattr(adapter, "freeze_embeddings", False) and not shape.tied:
        n += shape.vocab * shape.hidden
    layers = min(getattr(adapter, "freeze_layers", 0) or 0, shape.layers)
    n += layers * (sum(i * o for i, o in shape.linears().values()) + 2 * shape.hidden)
    return n


def memory(shape: ModelShape, *, method: str, dtype: str, micro_batch: int, seq_len: int,
           checkpointing: bool, sharding: Sharding = Sharding(), r: int = 16, targets="all-linear",
           chunked_head: bool = True, pairs: bool = False, reference: bool = False,
           lm_head: bool = True, lora_dropout: float = 0.0, accelerator: bool = True,
           frozen: int = 0) -> dict[str, float]:
    """GB per device, by component."""
    b = _bytes(dtype)
    n = max(1, sharding.gpus)
    shard_opt = n if sharding.kind in ("zero1", "zero2", "zero3", "fsdp") else 1
    shard_grad = n if sharding.kind in ("zero2", "zero3", "fsdp") else 1
    shard_w = n if sharding.kind in ("zero3", "fsdp") else 1
    P = shape.params
    if method == "full":
        trainable = P - frozen
        weights = P * b
        grads = trainable * b
        optim = trainable * (8 + (4 if b < 4 else 0))   # Adam m, v (+ fp32 master under mixed precision)
    else:
        trainable = lora_params(shape, r, targets)
        base = shape.linear_params * NF4_BYTES + shape.other_params * b if method == "qlora" else P * b
        weights = base + trainable * 4
        grads = trainable * 4
        optim = trainable * 8
    if reference and method == "full":       # DPO's frozen reference copy (LoRA: adapter disabled)
        weights += P * b
    if sharding.offload_optimizer:
        optim = 0
    tokens = micro_batch * seq_len * (2 if pairs else 1)
    kept = shape.layers
    layer = activation_bytes_per_token(shape, 1, b)
    if method != "full" and lora_dropout > 0:   # PEFT keeps a dropped copy of each adapted input (+ mask)
        dims = shape.linears()
        names = ALL_LINEAR if targets == "all-linear" else [t for t in targets if t in dims]
        layer += sum(dims[t][0] for t in names) * (b + 1)
    if not accelerator:   # CPU SDPA (flash kernel) keeps no scores, but every layer keeps its own
        layer += seq_len * b   # [seq x seq] copy of the padding mask (measured, torch 2.13 / transformers 5)
    if checkpointing:   # each layer's input (h) kept for the whole depth + one layer recomputed
        acts = tokens * (shape.hidden * b * shape.layers + layer)
    else:
        acts = tokens * layer * kept
    head_tokens = min(tokens, HEAD_CHUNK) if chunked_head else tokens
    per_logit = FUSED_LOGIT_BYTES if chunked_head else LOGIT_BYTES
    logits = head_tokens * shape.vocab * per_logit if lm_head else 0   # a reward model ends in one score
    out = {"weights": weights / shard_w, "gradients": grads / shard_grad, "optimizer": optim / shard_opt,
           "activations": acts, "logits": logits}
    if accelerator:
        out["runtime"] = CUDA_OVERHEAD_GB * GB
    return {k: v / GB for k, v in out.items()}


def flops_per_token(shape: ModelShape, method: str, checkpointing: bool, reference: bool = False) -> float:
    mult = 6 if method == "full" else 4
    if checkpointing:
        mult += 2
    if reference:   # DPO: a forward of the reference model
        mult += 2
    return mult * shape.params


def resolve_dtype(recipe_dtype: str, shape: ModelShape, accelerator: bool) -> str:
    if recipe_dtype != "auto":
        return recipe_dtype
    if not accelerator:
        return "float32"
    return shape.dtype if shape.dtype in ("bfloat16", "float16") else "bfloat16"


def estimate_stage(name: str, stage, shape: ModelShape, *, dtype: str, sharding: Sharding = Sharding(),
                   device: Device = Device(), suggest: bool = True) -> StageEstimate:
    a = stage.adapter
    pairs = stage.type in ("dpo", "reward")
    reference = stage.type == "dpo" and getattr(stage, "loss", "dpo") not in ("orpo", "simpo")
    chunked = stage.type in ("pretrain", "sft", "rejection_sampling")
    kw = dict(method=a.method, dtype=dtype, micro_batch=stage.batch_size, seq_len=stage.max_seq_len,
              checkpointing=stage.gradient_checkpointing, sharding=sharding, r=a.r, targets=a.target_modules,
              chunked_head=chunked, pairs=pairs, reference=reference, lm_head=stage.type != "reward",
              lora_dropout=a.dropout, accelerator=device.accelerator, frozen=frozen_params(shape, a))
    mem = memory(shape, **kw)
    total = sum(mem.values())
    trainable = shape.params - frozen_params(shape, a) if a.method == "full" else lora_params(shape, a.r, a.target_modules)
    n = max(1, sharding.gpus)
    tokens_step = stage.batch_size * stage.grad_accum * stage.max_seq_len * n * (2 if pairs else 1)
    tps = device.peak_tflops * 1e12 * device.mfu * n / flops_per_token(shape, a.method,
                                                                       stage.gradient_checkpointing, reference)
    sec_step = tokens_step / tps
    hours = stage.max_steps * sec_step / 3600 if stage.max_steps else None
    b = _bytes(dtype)
    disk = {"checkpoint": trainable * 12 / GB,   # fp32 trainable weights + Adam m, v (resumable)
            "final": (shape.params * b if a.method == "full" else trainable * 4) / GB}
    if a.method != "full" and a.merge:
        disk["merged"] = shape.params * b / GB
    est = StageEstimate(name, stage.type, a.method, stage.batch_size, stage.max_seq_len,
                        {k: round(v, 3) for k, v in mem.items()}, round(total, 2), total <= device.mem_gb,
                        trainable, tokens_step, round(tps, 1), round(sec_step, 3),
                        round(hours, 2) if hours is not None else None, {k: round(v, 3) for k, v in disk.items()})
    if not est.fits and suggest:
        est.warnings = _suggestions(name, stage, shape, dtype, sharding, device, total)
    return est


def _changes(name, stage, sharding) -> list[tuple[str, object, Sharding]]:
    """Single changes that lower memory: (label, changed stage, changed sharding)."""
    a, n, out = stage.adapter, max(1, sharding.gpus), []
    if a.method == "full":
        out.append((f"stages.{name}.adapter.method=lora",
                    stage.model_copy(update={"adapter": a.model_copy(update={"method": "lora"})}), sharding))
    if a.method in ("full", "lora"):
        out.append((f"stages.{name}.adapter.method=qlora",
                    stage.model_copy(update={"adapter": a.model_copy(update={"method": "qlora"})}), sharding))
    if sharding.kind not in ("zero3", "fsdp") or n == 1:
        gpus = max(n, 8)
        out.append((f"ZeRO-3 over {gpus} GPUs (accelerate launch --config_file configs/accelerate/zero3.yaml)",
                    stage, Sharding("zero3", gpus, source="suggested")))
    if not stage.gradient_checkpointing:
        out.append((f"stages.{name}.gradient_checkpointing=true",
                    stage.model_copy(update={"gradient_checkpointing": True}), sharding))
    if stage.batch_size > 1:
        mb = max(1, stage.batch_size // 4)
        accum = stage.grad_accum * stage.batch_size // mb
        out.append((f"stages.{name}.batch_size={mb} stages.{name}.grad_accum={accum} (same tokens per step)",
                    stage.model_copy(update={"batch_size": mb, "grad_accum": accum}), sharding))
    return out


def _gb(name, stage, shape, dtype, sharding, device) -> float:
    return estimate_stage(name, stage, shape, dtype=dtype, sharding=sharding, device=device, suggest=False).total_gb


def _suggestions(name, stage, shape, dtype, sharding, device, total) -> list[str]:
    """Concrete changes, each with the memory it would need (re-estimated, not guessed); when
    no single change fits, the smallest combination found greedily."""
    out = [f"{name}: needs {total:.1f} GB per device, more than --gpu-mem {device.mem_gb:g} GB"]
    single = sorted(((_gb(name, st, shape, dtype, sh, device), label) for label, st, sh in
                     _changes(name, stage, sharding)))
    out += [f"{label} -> {gb:.1f} GB" for gb, label in single if gb < total]
    if single and single[0][0] > device.mem_gb:
        labels, st, sh, gb = [], stage, sharding, total
        while gb > device.mem_gb:
            options = [(_gb(name, s2, shape, dtype, h2, device), label, s2, h2) for label, s2, h2 in
                       _changes(name, st, sh) if label not in labels]
            if not options or min(options, key=lambda o: o[0])[0] >= gb:
                break
            gb, label, st, sh = min(options, key=lambda o: o[0])
            labels.append(label)
        out.append(f"together: {' + '.join(labels)} -> {gb:.1f} GB" +
                   ("" if gb <= device.mem_gb else " (still over: more GPUs or CPU offload)"))
    return out


# ------------------------------------------------------------------ accelerate config
_CONFIG_FILE = re.compile(r"--config_file\s+(\S+\.ya?ml)")


def read_sharding(accelerate: Path | None, recipe_path: Path | None, gpus: int | None) -> Sharding:
    """Sharding from an accelerate config: ``--accelerate FILE``, else the one the recipe's
    comments launch with (``--config_file ...``), looked up next to configs/accelerate/."""
    import yaml

    path = accelerate
    if path is None and recipe_path is not None:
        m = _CONFIG_FILE.search(Path(recipe_path).read_text())
        if m:
            named = Path(m.group(1))
            folder = Path(recipe_path).parent / "accelerate"
            for cand in (named, Path(recipe_path).parent.parent / named, folder / named.name,
                         folder / named.name.replace("deepspeed_", "")):
                if cand.is_file():
                    path = cand
                    break
    if path is None:
        n = gpus or 1
        return Sharding("ddp" if n > 1 else "single", n, source="no accelerate config" +
                        (" (DDP assumed)" if n > 1 else ""))
    try:
        cfg = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PlanError(f"{path}: cannot read accelerate config ({exc})")
    n = gpus or int(cfg.get("num_processes", 1))
    dist = str(cfg.get("distributed_type", "NO")).upper()
    offload = False
    if dist == "DEEPSPEED":
        ds = cfg.get("deepspeed_config") or {}
        kind = f"zero{int(ds.get('zero_stage', 2))}" if int(ds.get("zero_stage", 2)) else "ddp"
        offload = str(ds.get("offload_optimizer_device", "none")).lower() == "cpu"
    elif dist == "FSDP":
        kind = "fsdp"
    else:
        kind = "ddp" if n > 1 else "single"
    if n == 1 and kind == "ddp":
        kind = "single"
    return Sharding(kind, n, offload, str(path))


def estimate_recipe(recipe, shape: ModelShape, sharding: Sharding, device: Device) -> dict:
    dtype = resolve_dtype(recipe.model.dtype, shape, device.accelerator)
    stages = [estimate_stage(name, st, shape, dtype=dtype, sharding=sharding, device=device)
              for name, st in recipe.stages.items()]
    return {"recipe": recipe.name, "model": dataclasses.asdict(shape), "params": shape.params, "dtype": dtype,
            "sharding": dataclasses.asdict(sharding), "device": dataclasses.asdict(device),
            "stages": [dataclasses.asdict(s) for s in stages],
            "assumptions": (f"time at {device.mfu:.0%} of {device.name}; activations with flash/SDPA attention; "
                            f"{CUDA_OVERHEAD_GB} GB CUDA runtime per device; data size unknown before loading, "
                            "so time is per optimizer step (total only with max_steps)")}


__all__ = ["Device", "ModelShape", "PlanError", "Sharding", "StageEstimate", "estimate_recipe", "estimate_stage",
           "memory", "read_shape", "read_sharding", "lora_params"]
