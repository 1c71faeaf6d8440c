"""Stage ``pretrain``: continual pretraining on raw text, packed into fixed blocks of
``max_seq_len`` tokens with EOS between documents (every position is a target)."""
from __future__ import annotations

from medllm.train.stage import StageContext


def train(ctx: StageContext) -> dict:
    from medllm.train.causal import load_policy, train_rows
    from medllm.train.data import resolve_stage_data, split_validation
    from medllm.train.tokenize import pack_text

    model, tok, context = load_policy(ctx)
    ds = resolve_stage_data(ctx.cfg.data, ctx.datasets, stage=ctx.name)
    if "text" not in ds.column_names:
        raise ValueError(f"stage '{ctx.name}' (pretrain) needs text records with a 'text' column; "
                         f"got columns {ds.column_names}")
    train_docs, val_docs = split_validation(ds, ctx.cfg, ctx.datasets, seed=ctx.seed)
    block = ctx.cfg.max_seq_len
    train_rows_ = pack_text(train_docs, tok, block=block, context_len=context)
    val_rows = pack_text(val_docs, tok, block=block, context_len=context) if val_docs is not None else None
    # Blocks are equal length already; the causal collator adds no padding to them.
    return train_rows(ctx, model, tok, train_rows_, val_rows, packed=False)
