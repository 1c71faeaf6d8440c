"""Stage ``sft``: supervised instruction tuning on conversations.

The model's own chat template formats each conversation; loss covers assistant tokens
only (every assistant turn, or the last with ``last_turn_only``). ``packing: true`` joins
samples into padding-free rows whose attention never crosses a sample boundary."""
from __future__ import annotations

from medllm.train.stage import StageContext


def prepare(ctx: StageContext, tok, context_len: int | None):
    from medllm.train.data import resolve_stage_data, split_validation
    from medllm.train.tokenize import tokenize_sft

    cfg = ctx.cfg
    ds = resolve_stage_data(cfg.data, ctx.datasets, stage=ctx.name)
    if "messages" not in ds.column_names:
        raise ValueError(f"stage '{ctx.name}' (sft) needs conversation records with a 'messages' column; "
                         f"got columns {ds.column_names}")
    train, val = split_validation(ds, cfg, ctx.datasets, seed=ctx.seed)
    kw = dict(max_len=cfg.max_seq_len, last_turn_only=getattr(cfg, "last_turn_only", False),
              system_prompt=getattr(cfg, "system_prompt", None), context_len=context_len)
    return tokenize_sft(train, tok, **kw), (tokenize_sft(val, tok, **kw) if val is not None else None)


def train(ctx: StageContext) -> dict:
    from medllm.train.causal import load_policy, train_rows

    model, tok, context = load_policy(ctx)
    train_ds, val_ds = prepare(ctx, tok, context)
    return train_rows(ctx, model, tok, train_ds, val_ds, packed=getattr(ctx.cfg, "packing", False))
