"""Stage ``reward``: a reward model (sequence-classification head, one score) trained on
chosen/rejected pairs with TRL's RewardTrainer (Bradley-Terry loss). Reports pairwise
accuracy (chosen scored above rejected) on the validation split, or on the training pairs
when there is none (then marked ``accuracy_on: train``)."""
from __future__ import annotations

from medllm.train.stage import StageContext


def load_reward_model(path, *, for_training: bool = False, dtype: str = "auto", device: str | None = "auto",
                      quantize: str | None = None, chat_template=None, max_seq_len: int | None = None):
    """A one-score sequence classifier on ``path`` (a classifier folder, a causal LM whose
    head is replaced, or a stage folder, merged to files first: a classifier loads from files).

    For scoring (``for_training=False``) it loads on this process's accelerator in bf16 where
    available; for training, ``device=None`` leaves placement to the trainer."""
    from transformers import AutoModelForSequenceClassification

    from medllm.models.lineage import materialize_merged
    from medllm.models.loading import _from_pretrained, load_tokenizer, model_folder, pick_device, pick_dtype

    folder = materialize_merged(model_folder(path))
    dev = pick_device(device) if device is not None else None
    torch_dtype = pick_dtype(dtype, dev or pick_device("auto"), for_training=for_training)
    tok = load_tokenizer(folder, chat_template=chat_template, max_seq_len=max_seq_len)
    model = _from_pretrained(folder, torch_dtype, quantize=quantize, device=dev,
                             cls=AutoModelForSequenceClassification, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    if dev is not None and quantize is None:
        model.to(dev)
    if not for_training:
        model.eval()
    return model, tok


def score_conversations(model, tok, conversations: list[list[dict]], *, batch_size: int = 8,
                        max_len: int = 1024) -> list[float]:
    """One scalar reward per conversation (rendered with the chat template). A conversation
    longer than ``max_len`` tokens loses its oldest tokens (the prompt's start), never the
    response being scored; inputs go to the model's own device."""
    import torch

    from medllm.models import model_device

    texts = [tok.apply_chat_template(c, tokenize=False) for c in conversations]
    scores: list[float] = []
    side, trunc = tok.padding_side, tok.truncation_side
    tok.padding_side, tok.truncation_side = "right", "left"
    dev = model_device(model)
    try:
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                enc = tok(texts[i:i + batch_size], return_tensors="pt", padding=True, truncation=True,
                          max_length=max_len, add_special_tokens=False)
                out = model(**{k: v.to(dev) for k, v in enc.items()})
                scores += out.logits[:, 0].float().tolist()
    finally:
        tok.padding_side, tok.truncation_side = side, trunc
    return scores


def pairwise_accuracy(model, tok, pairs, *, max_len: int) -> float:
    chosen = [list(r["prompt"]) + list(r["chosen"]) for r in pairs]
    rejected = [list(r["prompt"]) + list(r["rejected"]) for r in pairs]
    a = score_conversations(model, tok, chosen, max_len=max_len)
    b = score_conversations(model, tok, rejected, max_len=max_len)
    return sum(x > y for x, y in zip(a, b)) / max(len(a), 1)


def preference_data(ctx: StageContext):
    from medllm.train.data import resolve_stage_data, split_validation
    from medllm.train.tokenize import EmptyDataset

    ds = resolve_stage_data(ctx.cfg.data, ctx.datasets, stage=ctx.name)
    missing = {"prompt", "chosen", "rejected"} - set(ds.column_names)
    if missing:
        raise ValueError(f"stage '{ctx.name}' ({ctx.cfg.type}) needs preference records "
                         f"(prompt/chosen/rejected); missing columns {sorted(missing)}")
    ds = ds.select_columns(["prompt", "chosen", "rejected"])
    ds = ds.filter(lambda r: bool(r["chosen"]) and bool(r["rejected"]) and r["chosen"] != r["rejected"])
    if len(ds) == 0:
        raise EmptyDataset(f"stage '{ctx.name}': no usable preference pairs (empty or chosen == rejected)")
    return split_validation(ds, ctx.cfg, ctx.datasets, seed=ctx.seed)


def train(ctx: StageContext) -> dict:
    import torch
    from trl import RewardConfig, RewardTrainer

    from medllm.io import atomic_write_json
    from medllm.train.adapters import check_qlora_supported, lora_config
    from medllm.train.checkpoints import CompleteCheckpointMixin
    from medllm.train.stage import callbacks, fit, training_args

    class Trainer(CompleteCheckpointMixin, RewardTrainer):
        pass

    from medllm.models.loading import dtype_name
    from medllm.train.base import model_config, training_dtype

    adapter, mcfg = ctx.cfg.adapter, model_config(ctx)
    if adapter.method == "qlora":
        check_qlora_supported()
    torch.manual_seed(ctx.seed)
    ctx.weights_dtype = training_dtype(mcfg.dtype, adapter.method, ctx.cfg.bf16)
    model, tok = load_reward_model(ctx.base_model, for_training=True, dtype=dtype_name(ctx.weights_dtype),
                                   device=None, quantize="nf4" if adapter.method == "qlora" else None,
                                   chat_template=mcfg.chat_template, max_seq_len=mcfg.max_seq_len)
    if adapter.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    train_ds, val_ds = preference_data(ctx)
    peft = None if adapter.method == "full" else lora_config(adapter, model, task_type="SEQ_CLS")
    args = training_args(ctx, RewardConfig, has_eval=val_ds is not None, max_length=ctx.cfg.max_seq_len,
                         disable_dropout=True)
    hist, cbs = callbacks(ctx)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds, processing_class=tok,
                      callbacks=cbs, peft_config=peft)
    metrics = fit(ctx, trainer, hist)
    if trainer.is_world_process_zero():
        scored = trainer.accelerator.unwrap_model(trainer.model)
        scored.eval()
        pairs = val_ds if val_ds is not None else train_ds
        metrics["pairwise_accuracy"] = pairwise_accuracy(scored, tok, pairs, max_len=ctx.cfg.max_seq_len)
        metrics["accuracy_on"] = "validation" if val_ds is not None else "train"
        atomic_write_json(ctx.stage_dir / "metrics.json", metrics)
    return metrics
