"""Stage ``pretrain``: continual pretraining on raw text, packed into fixed blocks of
``max_seq_len`` tokens with EOS between documents and BOS at the start of each document and
block where the tokenizer expects one (every position is a target)."""
from __future__ import annotations

from medllm.train.stage import StageContext


def train(ctx: StageContext) -> dict:
    from medllm.train.causal import load_policy, train_rows
    from medllm.train.data import resolve_stage_data, split_validation
    from medllm.train.tokenize import pack_text, text_rows

    model, tok, context = load_policy(ctx)
    ds = resolve_stage_data(ctx.cfg.data, ctx.datasets, stage=ctx.name)
    if "text" not in ds.column_names:
        raise ValueError(f"stage '{ctx.name}' (pretrain) needs text records with a 'text' column; "
                         f"got columns {ds.column_names}")
    train_docs, val_docs = split_validation(ds, ctx.cfg, ctx.datasets, seed=ctx.seed)
    block = ctx.cfg.max_seq_len
    if ctx.cfg.packing:  # equal-length blocks: the collator adds no padding
        rows = lambda docs: pack_text(docs, tok, block=block, context_len=context)  # noqa: E731
    else:  # one document per row, length-grouped batches
        rows = lambda docs: text_rows(docs, tok, max_len=block, context_len=context)  # noqa: E731
    train_rows_ = rows(train_docs)
    val_rows = rows(val_docs) if val_docs is not None else None
    return train_rows(ctx, model, tok, train_rows_, val_rows, packed=False)
