"""Stage ``dpo``: preference optimisation on chosen/rejected pairs with TRL.

``loss`` picks the objective: ``dpo`` (sigmoid) and ``ipo`` via DPOTrainer (the reference
is the frozen start model; with LoRA that is the base with the adapter switched off, so no
second copy is held in memory), ``orpo`` and ``simpo`` via TRL's reference-free
ORPO/CPO trainers, ``kto`` via KTOTrainer on the pairs split into desirable/undesirable
single answers."""
from __future__ import annotations

from medllm.train.stage import StageContext


def _trainer_for(loss: str):
    """(trainer class, config class, extra config kwargs) for a loss name."""
    if loss in ("dpo", "ipo"):
        from trl import DPOConfig, DPOTrainer

        return DPOTrainer, DPOConfig, {"loss_type": ["sigmoid" if loss == "dpo" else "ipo"]}
    if loss == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        return ORPOTrainer, ORPOConfig, {}
    if loss == "simpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        return CPOTrainer, CPOConfig, {"loss_type": "simpo", "cpo_alpha": 0.0}
    if loss == "kto":
        from trl import KTOConfig, KTOTrainer

        return KTOTrainer, KTOConfig, {}
    raise ValueError(f"unknown preference loss '{loss}' (have: dpo, ipo, orpo, kto, simpo)")


def pairs_to_unpaired(ds):
    """KTO learns from single answers labelled good/bad: each pair gives one of each."""
    from datasets import Dataset

    rows = []
    for r in ds:
        rows.append({"prompt": r["prompt"], "completion": r["chosen"], "label": True})
        rows.append({"prompt": r["prompt"], "completion": r["rejected"], "label": False})
    return Dataset.from_list(rows)


def train(ctx: StageContext) -> dict:
    import torch

    from medllm.train.adapters import check_qlora_supported, lora_config
    from medllm.train.base import load_start_model
    from medllm.train.checkpoints import CompleteCheckpointMixin
    from medllm.train.reward import preference_data
    from medllm.train.stage import callbacks, fit, training_args
    from medllm.train.trl_cpu import score_labelled_positions_only_on_cpu

    cfg = ctx.cfg
    score_labelled_positions_only_on_cpu()
    base_cls, cfg_cls, extra = _trainer_for(cfg.loss)

    class Trainer(CompleteCheckpointMixin, base_cls):
        pass

    if cfg.adapter.method == "qlora":
        check_qlora_supported()
    torch.manual_seed(ctx.seed)
    # left on the CPU (a QLoRA base on this rank's device): the trainer places it per rank
    model, tok = load_start_model(ctx, gradient_checkpointing=cfg.gradient_checkpointing)
    train_ds, val_ds = preference_data(ctx)
    if cfg.loss == "kto":
        train_ds = pairs_to_unpaired(train_ds)
        val_ds = pairs_to_unpaired(val_ds) if val_ds is not None else None
    peft = None if cfg.adapter.method == "full" else lora_config(cfg.adapter, model)
    args = training_args(ctx, cfg_cls, has_eval=val_ds is not None, beta=cfg.beta, max_length=cfg.max_seq_len,
                         **extra)
    hist, cbs = callbacks(ctx)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds, processing_class=tok,
                      callbacks=cbs, peft_config=peft)
    return fit(ctx, trainer, hist)
