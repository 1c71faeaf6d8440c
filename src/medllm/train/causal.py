"""Shared by the causal-LM stages (pretrain, sft, rejection sampling): load the base,
attach the adapter, and train tokenized rows with FastCausalLMTrainer."""
from __future__ import annotations

from medllm.train.stage import StageContext


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
    from medllm.train.checkpoints import CompleteCheckpointMixin
    from medllm.train.stage import callbacks, fit, training_args

    class Trainer(CompleteCheckpointMixin, FastCausalLMTrainer):
        pass

    # Length-grouped batches keep padding small; packed rows are already padding-free.
    args = training_args(ctx, has_eval=eval_rows is not None,
                         train_sampling_strategy="group_by_length" if ctx.cfg.length_grouping and not packed
                         else "random")
    hist, cbs = callbacks(ctx)
    trainer = Trainer(model=model, args=args, train_dataset=train_rows, eval_dataset=eval_rows,
                      data_collator=CausalCollator(tok.pad_token_id, packed=packed), processing_class=tok,
                      callbacks=cbs)
    return fit(ctx, trainer, hist)
