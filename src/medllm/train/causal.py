"""Shared by the causal-LM stages (pretrain, sft, rejection sampling): load the base,
attach the adapter, and train tokenized rows with FastCausalLMTrainer."""
from __future__ import annotations

import logging

from medllm.train.stage import StageContext

log = logging.getLogger(__name__)


def load_policy(ctx: StageContext):
    """(trainable model, tokenizer, context length) for ``ctx.base_model`` (a model folder or
    an earlier stage folder, whose adapters are merged in memory), left on the CPU for the
    trainer to place on this rank's device."""
    import torch

    from medllm.train.adapters import wrap_model
    from medllm.train.base import context_length, load_start_model

    torch.manual_seed(ctx.seed)  # LoRA init is random: same seed, same run
    model, tok = load_start_model(ctx, gradient_checkpointing=ctx.cfg.gradient_checkpointing)
    return wrap_model(model, ctx.cfg.adapter), tok, context_length(model, ctx)


def train_rows(ctx: StageContext, model, tok, train_rows, eval_rows, *, packed: bool) -> dict:
    from medllm.train.fast_lm import CausalCollator, FastCausalLMTrainer
    from medllm.train.base import bf16_master_weights
    from medllm.train.checkpoints import CompleteCheckpointMixin
    from medllm.train.master_weights import MasterWeightsMixin
    from medllm.train.stage import callbacks, fit, training_args

    class Trainer(CompleteCheckpointMixin, MasterWeightsMixin, FastCausalLMTrainer):
        pass

    fits = _split_batches(ctx)
    # Length-grouped batches keep padding small; packed rows are already padding-free.
    args = training_args(ctx, has_eval=eval_rows is not None,
                         train_sampling_strategy="group_by_length" if ctx.cfg.length_grouping and not packed
                         else "random")
    hist, cbs = callbacks(ctx)
    trainer = Trainer(model=model, args=args, train_dataset=train_rows, eval_dataset=eval_rows,
                      data_collator=CausalCollator(tok.pad_token_id, packed=packed,
                                                   pad_to_multiple_of=getattr(ctx.cfg, "pad_to_multiple_of", None)),
                      processing_class=tok,
                      callbacks=cbs)
    trainer.forward_fits = fits
    trainer.share_prefix = getattr(ctx.cfg, "share_prefix", True)
    trainer.master_weights = bf16_master_weights(ctx)
    return fit(ctx, trainer, hist)


def _split_batches(ctx: StageContext):
    """On one CPU process whose micro-batch ``memory_fit`` shrank for ``max_seq_len``-long rows:
    go back to the configured batch and let the trainer split only the batches that really do
    not fit (``fast_lm.split_to_fit``). Returns the ``fits(rows, width)`` check, or None."""
    import os

    from medllm.train.memory_fit import forward_fits

    plan = ctx.memory_plan
    if not plan.get("micro_batch") or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    from medllm.train.fast_lm import EAGER_ATTENTION_MAX_WIDTH

    fits = forward_fits(ctx.name, ctx.cfg, ctx.base_model, plan["memory_budget_gb"],
                        eager_max_width=EAGER_ATTENTION_MAX_WIDTH)
    if fits is None:
        return None
    ctx.cfg = ctx.cfg.model_copy(update={"batch_size": plan["batch_size_configured"],
                                         "grad_accum": plan["grad_accum_configured"]})
    plan.update(micro_batch=ctx.cfg.batch_size, grad_accum=ctx.cfg.grad_accum, split_to_fit=True)
    log.info("%s: one process: batches of %d x grad_accum %d as configured after all; only a batch whose "
             "rows x width the estimate puts over %.1f GB runs in pieces", ctx.name, ctx.cfg.batch_size,
             ctx.cfg.grad_accum, plan["memory_budget_gb"])
    return fits
