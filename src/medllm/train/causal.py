"""Shared by the causal-LM stages (pretrain, sft, rejection sampling): load the base,
attach the adapter, and train tokenized rows with FastCausalLMTrainer."""
from __future__ import annotations

from medllm.train.stage import StageContext


def load_policy(ctx: StageContext):
    """(trainable model, tokenizer, context length) for ``ctx.base_model``."""
    import torch

    from medllm.models import load_causal_lm
    from medllm.train.adapters import wrap_model

    torch.manual_seed(ctx.seed)  # LoRA init is random: same seed, same run
    model, tok = load_causal_lm(ctx.base_model, dtype="float32", device="cpu" if not torch.cuda.is_available()
                                else "cuda", for_training=True)
    model.config.use_cache = False
    context = getattr(model.config, "max_position_embeddings", None)
    if ctx.cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return wrap_model(model, ctx.cfg.adapter), tok, context


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
