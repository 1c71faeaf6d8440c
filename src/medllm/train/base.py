"""The model a stage starts from: dtype, device, 4-bit base and chat template, decided once.

Weights dtype (``model.dtype``; ``auto`` below) and the trainer's mixed precision go together:

- GPU with bf16: bf16 weights, bf16 autocast.
- GPU without bf16: fp16 frozen base for LoRA/QLoRA with fp16 autocast; fp32 master weights
  for full fine-tuning (fp16 AMP cannot step fp16 parameters).
- CPU: fp32 weights, bf16 autocast where the CPU has native bf16. Full fine-tuning in one
  process then trains bf16 copies of the weights against fp32 masters (``bf16_master_weights``). LoRA on such a CPU can keep the frozen
  base in bf16 (``CPU_BF16_FROZEN_BASE``, on: measured 1.20x on the demo pretrain), so autocast does not cast every base weight to bf16 again in
  every forward; the adapters stay fp32 (PEFT's ``autocast_adapter_dtype``) and the stage's
  lineage stays fp32, so the merge folds the fp32 adapter into the fp32 base.

The model is left where it loaded: the Trainer/accelerate puts it on each rank's own device
(a QLoRA base is placed at load time, on ``cuda:LOCAL_RANK``)."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

CPU_BF16_FROZEN_BASE = True  # measured 1.20x on the demo pretrain stage, same loss: docs/training.md


def model_config(ctx):
    """The recipe's ``model:`` section (defaults when a stage runs without a recipe)."""
    from medllm.config.model import ModelConfig

    cfg = getattr(ctx.recipe, "model", None) if ctx.recipe is not None else None
    return cfg if cfg is not None else ModelConfig()


def training_dtype(requested: str, method: str, stage_bf16="auto"):
    import torch

    from medllm.models.hardware import accelerator, accelerator_supports_bf16
    from medllm.models.loading import pick_dtype

    if requested != "auto":
        dtype = pick_dtype(requested)
        if dtype == torch.float16 and method == "full":
            log.warning("full fine-tuning keeps fp32 master weights (fp16 autocast): fp16 AMP cannot step "
                        "fp16 parameters")
            return torch.float32
        return dtype
    if accelerator() != "cuda" or stage_bf16 in (False, "false"):
        return torch.float32
    if accelerator_supports_bf16():
        return torch.bfloat16
    return torch.float32 if method == "full" else torch.float16


def mixed_precision(weights_dtype, stage_cfg) -> dict:
    """``bf16``/``fp16`` flags for the trainer that match the weights' dtype."""
    import torch

    from medllm.models.hardware import accelerator, accelerator_supports_bf16
    from medllm.train.stage import use_bf16

    if weights_dtype == torch.bfloat16:
        return {"bf16": stage_cfg.bf16 not in (False, "false"), "fp16": False}
    if weights_dtype == torch.float16:
        return {"bf16": False, "fp16": True}
    bf16 = use_bf16(stage_cfg)
    fp16 = (not bf16 and stage_cfg.bf16 == "auto" and accelerator() == "cuda"
            and not accelerator_supports_bf16())
    return {"bf16": bf16, "fp16": fp16}


def load_start_model(ctx, *, gradient_checkpointing: bool = False):
    """(model, tokenizer) to train: the start model in its training dtype, 4-bit NF4 and
    prepared for k-bit training when the stage's adapter is ``qlora``; records the dtype on
    ``ctx.weights_dtype`` for the trainer's precision flags and the stage's lineage."""
    import torch

    from medllm.models import cpu_supports_bf16, load_causal_lm
    from medllm.models.loading import dtype_name

    mcfg, method = model_config(ctx), ctx.cfg.adapter.method
    dtype = training_dtype(mcfg.dtype, method, ctx.cfg.bf16)
    lineage = dtype
    if method == "qlora" and mcfg.dtype == "auto" and dtype == torch.float32 and cpu_supports_bf16():
        dtype = lineage = torch.bfloat16  # 4-bit matmuls compute in bf16 where it is native
    if (method == "lora" and mcfg.dtype == "auto" and dtype == torch.float32 and CPU_BF16_FROZEN_BASE
            and _cpu_autocast_bf16(ctx)):
        dtype = torch.bfloat16  # frozen base only: no per-forward fp32 -> bf16 weight casts
    model, tok = load_causal_lm(ctx.base_model, dtype=dtype_name(dtype), device=None, for_training=True,
                                chat_template=mcfg.chat_template, max_seq_len=mcfg.max_seq_len,
                                quantize="nf4" if method == "qlora" else None)
    ctx.weights_dtype, ctx.lineage_dtype = dtype, lineage
    model.config.use_cache = False
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model, tok


def bf16_master_weights(ctx) -> bool:
    """Full fine-tuning on one CPU process under bf16 autocast: train bf16 weights against
    fp32 master weights (``train/master_weights.py``; measured in docs/training.md)."""
    import os

    from medllm.models.hardware import accelerator
    from medllm.train.master_weights import wanted

    return wanted(method=ctx.cfg.adapter.method, on_cpu=accelerator() != "cuda", autocast_bf16=_cpu_autocast_bf16(ctx),
                  weights_dtype=ctx.weights_dtype, world_size=int(os.environ.get("WORLD_SIZE", "1")))


def _cpu_autocast_bf16(ctx) -> bool:
    from medllm.models.hardware import accelerator
    from medllm.train.stage import use_bf16

    return accelerator() != "cuda" and use_bf16(ctx.cfg)


def context_length(model, ctx) -> int | None:
    """The longest sequence a stage may use: the model's positions, capped by ``model.max_seq_len``."""
    context = getattr(model.config, "max_position_embeddings", None)
    cap = model_config(ctx).max_seq_len
    if cap:
        context = min(context, cap) if context else cap
    return context
