"""``run_stage``: one training stage from its config to a merged model in the run folder.

Shared by every stage: TrainingArguments from the stage config, resume from the last
complete checkpoint, validation / best checkpoint, TensorBoard, loss curve, metrics.json,
adapter + merged outputs. The stage modules (pretrain, sft, reward, rejection_sampling,
dpo) only prepare data and pick the HF/TRL trainer class."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medllm.io import atomic_write_json

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    model_dir: Path | None      # None on the ranks that saved nothing (all but rank 0)
    adapter_dir: Path | None
    metrics: dict = field(default_factory=dict)


@dataclass
class StageContext:
    """Everything a stage module needs besides its own config."""
    name: str
    cfg: Any
    stage_dir: Path
    base_model: Path
    datasets: dict
    seed: int
    resume: bool | None = None
    reward_model: Path | None = None
    recipe: Any = None
    weights_dtype: Any = None   # set when the start model is loaded (trainer precision)
    lineage_dtype: Any = None   # the dtype the stage's weights are kept in (default: weights_dtype)
    memory_plan: dict = field(default_factory=dict)   # CPU micro-batch decided from the budget (memory_fit)

    @property
    def checkpoints(self) -> Path:
        return self.stage_dir / "checkpoints"


def use_bf16(cfg) -> bool:
    from medllm.models import cpu_supports_bf16

    if cfg.bf16 in (True, "true"):
        return True
    if cfg.bf16 in (False, "false"):
        return False
    from medllm.models.hardware import accelerator, accelerator_supports_bf16

    if accelerator() == "cuda":
        return accelerator_supports_bf16()
    return cpu_supports_bf16()


def training_args(ctx: StageContext, args_cls=None, *, has_eval: bool, **extra):
    """HF/TRL training arguments from a stage config (``args_cls``: TrainingArguments or a TRL config)."""
    from transformers import TrainingArguments

    from medllm.models.hardware import accelerator

    cfg = ctx.cfg
    args_cls = args_cls or TrainingArguments
    eval_every = cfg.eval_every if has_eval else None
    save_every = cfg.save_every
    if eval_every and (not save_every or save_every % eval_every):
        save_every = eval_every  # best-by-validation needs a checkpoint at every evaluation
    kw: dict[str, Any] = dict(
        output_dir=str(ctx.checkpoints),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        weight_decay=cfg.weight_decay,
        **_precision(ctx),
        use_cpu=accelerator() != "cuda",  # the one device probe (tests pretend to be on a GPU)
        gradient_checkpointing=cfg.gradient_checkpointing,
        logging_steps=cfg.log_every,
        save_strategy="steps" if save_every else "no",
        save_steps=save_every or 500,
        eval_strategy="steps" if eval_every else "no",
        eval_steps=eval_every,
        load_best_model_at_end=bool(eval_every),
        metric_for_best_model="eval_loss" if eval_every else None,
        greater_is_better=False if eval_every else None,
        save_total_limit=2 if save_every else None,
        seed=ctx.seed,
        data_seed=ctx.seed,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        prediction_loss_only=True,
        dataloader_num_workers=0,
        save_safetensors=True,
    )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and accelerator() != "cuda":
        kw["ddp_backend"] = "gloo"  # CPU processes talk over gloo
    kw.update(extra)
    import inspect

    accepted = inspect.signature(args_cls.__init__).parameters
    if "activation_checkpointing" in accepted:  # transformers 5 renamed it; the old name warns
        kw["activation_checkpointing"] = kw.pop("gradient_checkpointing")
    return args_cls(**{k: v for k, v in kw.items() if k in accepted})


def _precision(ctx: StageContext) -> dict:
    if ctx.weights_dtype is None:
        return {"bf16": use_bf16(ctx.cfg)}
    from medllm.train.base import mixed_precision

    return mixed_precision(ctx.weights_dtype, ctx.cfg)


def callbacks(ctx: StageContext):
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    from medllm.train.observe import ProgressAndHistory

    hist = ProgressAndHistory(f"train {ctx.name}")
    tb = TensorBoardCallback(tb_writer=SummaryWriter(str(ctx.stage_dir / "tensorboard")))
    cbs = [hist, tb]
    if ctx.memory_plan.get("memory_budget_gb"):   # a CPU stage held to a budget (memory_fit)
        from medllm.train.memory_fit import heap_trim_callback

        cbs.append(heap_trim_callback(ctx.memory_plan["memory_budget_gb"], ctx.memory_plan))
    return hist, cbs


def resume_point(ctx: StageContext) -> str | None:
    from medllm.train.checkpoints import drop_incomplete, last_complete_checkpoint

    if ctx.resume is False:
        return None
    dropped = drop_incomplete(ctx.checkpoints)
    if dropped:
        log.warning("%s: ignoring incomplete checkpoint(s) %s", ctx.name, ", ".join(dropped))
    last = last_complete_checkpoint(ctx.checkpoints)
    if last is None and ctx.resume:
        log.warning("%s: --resume given but no complete checkpoint in %s; starting fresh", ctx.name, ctx.checkpoints)
    if last is not None:
        log.info("%s: resuming from %s", ctx.name, last)
    return str(last) if last else None


def fit(ctx: StageContext, trainer, hist, *, task: str = "causal_lm") -> dict:
    """Train (resuming when possible), evaluate, and write outputs + metrics."""
    from medllm.train.adapters import save_outputs
    from medllm.train.checkpoints import mark_best
    from medllm.train.observe import plot_loss

    from transformers.trainer_callback import PrinterCallback

    hist.trainer = trainer
    trainer.remove_callback(PrinterCallback)  # our progress bar shows the loss instead of raw dict prints
    before = _param_fingerprint(trainer.model)
    t0 = time.perf_counter()
    out = trainer.train(resume_from_checkpoint=resume_point(ctx))
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {"stage": ctx.name, "type": ctx.cfg.type, "train_loss": out.training_loss,
                               "global_step": trainer.state.global_step, "seconds": round(seconds, 2)}
    if trainer.eval_dataset is not None:
        ev = trainer.evaluate()
        metrics.update({k: v for k, v in ev.items() if k.startswith("eval_") and isinstance(v, (int, float))})
    tokens = getattr(trainer, "tokens_seen", 0) * trainer.accelerator.num_processes
    if tokens:
        metrics.update(tokens=tokens, tokens_per_s=round(tokens / seconds, 1),
                       target_tokens=getattr(trainer, "target_tokens_seen", 0) * trainer.accelerator.num_processes)
    metrics["params_changed"] = before != _param_fingerprint(trainer.model)
    metrics["trainable_params"] = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    metrics["world_size"] = trainer.accelerator.num_processes
    metrics.update(ctx.memory_plan)
    if ctx.weights_dtype is not None:
        from medllm.models.loading import dtype_name

        metrics["weights_dtype"] = dtype_name(ctx.weights_dtype)
    if getattr(trainer, "master_weights", False):
        metrics["bf16_master_weights"] = True   # trained as bf16 against fp32 masters (train/master_weights.py)
    if getattr(trainer, "forwards", 0):
        metrics.update(forwards=trainer.forwards, forward_rows_max=trainer.forward_rows_max)
    if getattr(trainer, "prefix_tokens_saved", 0):
        metrics.update(prefix_tokens_saved=trainer.prefix_tokens_saved)
    # from the trainer state, which a resumed run restores from its checkpoint
    logs = trainer.state.log_history
    hist.train = [(h["step"], float(h["loss"])) for h in logs if "loss" in h]
    hist.eval = [(h["step"], float(h["eval_loss"])) for h in logs if "eval_loss" in h]
    metrics["loss_history"] = hist.train
    metrics["eval_history"] = hist.eval
    metrics["final_loss"] = hist.train[-1][1] if hist.train else out.training_loss
    best = trainer.state.best_model_checkpoint
    metrics["best_checkpoint"] = Path(best).name if best else None
    if not trainer.is_world_process_zero():
        return metrics
    mark_best(ctx.checkpoints, best)
    model = trainer.accelerator.unwrap_model(trainer.model)
    model_dir, adapter = save_outputs(model, trainer.processing_class, ctx.stage_dir, base_model=ctx.base_model,
                                      dtype=_lineage_dtype(ctx, model), merged=ctx.cfg.type == "reward")
    metrics["model_dir"], metrics["adapter_dir"] = str(model_dir), str(adapter) if adapter else None
    plot_loss(ctx.stage_dir / "loss_curve.png", hist.train, hist.eval, f"{ctx.name} ({ctx.cfg.type})")
    atomic_write_json(ctx.stage_dir / "metrics.json", metrics)
    return metrics


def _lineage_dtype(ctx: StageContext, model) -> str:
    """The dtype merged weights of this stage are kept in: the start model's."""
    from medllm.models.loading import dtype_name

    if ctx.lineage_dtype is not None:
        return dtype_name(ctx.lineage_dtype)
    if ctx.weights_dtype is not None:
        return dtype_name(ctx.weights_dtype)
    return dtype_name(getattr(model, "dtype", "float32"))


def _param_fingerprint(model) -> float:
    import torch

    with torch.no_grad():
        return float(sum(p.detach().double().sum() for p in model.parameters() if p.requires_grad))


STAGE_MODULES = {
    "pretrain": "medllm.train.pretrain",
    "sft": "medllm.train.sft",
    "reward": "medllm.train.reward",
    "rejection_sampling": "medllm.train.rejection_sampling",
    "dpo": "medllm.train.dpo",
}


def run_stage(name: str, stage, *, recipe=None, run=None, base_model: Path, datasets: dict | None = None,
              reward_model: Path | None = None, resume: bool | None = None, out_dir: Path | None = None,
              seed: int | None = None) -> StageResult:
    """Run one stage. Writes into ``run.stage_dir(name)`` (or ``out_dir``): adapter/, merged/,
    metrics.json, loss_curve.png, tensorboard/, checkpoints/. ``resume``: None = continue
    from the last complete checkpoint when there is one, True = same but warn if none,
    False = start fresh."""
    import importlib

    from medllm.models.registry import ensure_local
    from medllm.paths import is_quiet

    if is_quiet():
        import datasets as hf_datasets

        hf_datasets.disable_progress_bars()

    from medllm.train.memory_fit import fit_stage

    stage_dir = Path(out_dir) if out_dir else run.stage_dir(name)
    stage_dir.mkdir(parents=True, exist_ok=True)
    stage, memory_plan = fit_stage(name, stage, ensure_local(base_model))   # CPU: micro-batch from the budget
    if seed is None:
        seed = stage.seed if stage.seed is not None else (recipe.seed if recipe is not None else 42)
    ctx = StageContext(name=name, cfg=stage, stage_dir=stage_dir, base_model=Path(ensure_local(base_model)),
                       datasets=datasets or {}, seed=seed, resume=resume,
                       reward_model=Path(reward_model) if reward_model else None, recipe=recipe,
                       memory_plan=memory_plan)
    module = importlib.import_module(STAGE_MODULES[stage.type])
    metrics = module.train(ctx)
    adapter = metrics.get("adapter_dir")
    # only the process that saved knows where the model is; other ranks get None and must use
    # the folder rank 0 reports (the pipeline broadcasts it), never a guess from the stage type
    model_dir = Path(metrics["model_dir"]) if metrics.get("model_dir") else None
    return StageResult(model_dir=model_dir, adapter_dir=Path(adapter) if adapter else None, metrics=metrics)
