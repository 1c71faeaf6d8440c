"""The ``stages:`` section: one entry per training stage, run in file order."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from medllm.config.base import Section

STAGE_TYPES = ("pretrain", "sft", "reward", "rejection_sampling", "dpo")


class AdapterConfig(Section):
    method: Literal["full", "lora", "qlora"] = "lora"
    r: int = Field(default=16, gt=0)
    alpha: int = Field(default=32, gt=0)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    merge: bool = True
    """Merge into the base after the stage so the next stage starts from the result (else stack)."""
    freeze_layers: int = Field(default=0, ge=0)
    """Full fine-tuning only: keep the token embeddings (and a head tied to them) and the first N decoder
    layers frozen. Backward then stops above layer N, which saves its share of the step's compute and the
    frozen weights' gradients and optimizer state (docs/demo.md measures what it costs in uptake)."""
    freeze_embeddings: bool = False
    """Full fine-tuning only: keep the token embeddings and the output head (tied or not) frozen, and
    train every decoder layer. The vocabulary matrices are a large share of a small model (SmolLM2-135M:
    28M of 135M parameters) and of a big-vocabulary one (Llama-3-8B: 1.05B); frozen, they need no
    gradient, fp32 master copy or optimizer state (docs/demo.md measures what it costs in uptake)."""


class StageBase(Section):
    data: list[str] = Field(default_factory=list)
    """Data source names (from ``data.sources``), files, or ``builtin:`` sets."""
    adapter: AdapterConfig = Field(default_factory=AdapterConfig)
    lr: float = Field(default=2e-4, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    batch_size: int = Field(default=8, gt=0)
    grad_accum: int = Field(default=1, gt=0)
    max_seq_len: int = Field(default=512, gt=8)
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    bf16: Literal["auto", "true", "false"] | bool = "auto"
    gradient_checkpointing: bool = False
    val_fraction: float = Field(default=0.0, ge=0, lt=1)
    val_file: str | None = None
    eval_every: int | None = Field(default=None, gt=0)
    save_every: int | None = Field(default=None, gt=0)
    log_every: int = Field(default=10, gt=0)
    seed: int | None = None
    max_samples: int | None = Field(default=None, gt=0)
    length_grouping: bool = True
    """Batch samples of similar length together (less padding, faster); off = plain shuffling."""
    cpu_memory_gb: float | None = Field(default=None, ge=0)
    """On CPU, the RSS budget the micro-batch is sized to from the plan's estimate (default 6 GB;
    0 = keep batch_size as the micro-batch). batch_size x grad_accum per optimizer step is kept."""


class CausalStageBase(StageBase):
    """Stages trained as a causal LM by medllm's own trainer (``train.fast_lm``)."""
    pad_to_multiple_of: int | None = Field(default=None, gt=0)
    """Pad each (unpacked) batch to a multiple of this many tokens. On CPU that bounds the number of
    distinct activation sizes, so freed heap blocks fit the next batch: demo SFT, 60 steps, 8 ->
    peak 5.78 -> 5.34 GB at 0.965x the speed (docs/training.md, "Allocator")."""
    share_prefix: bool = True
    """Compute a prompt prefix that rows of a padded batch share (a system turn, a fixed instruction)
    once per distinct prefix instead of once per row: same loss and gradients, fewer decoder tokens.
    Runs only where a batch saves >= 128 decoder tokens (a 95-token system prompt: 1.5x faster; a 15-token
    one: no gain), on one process without gradient checkpointing (``train.fast_lm``, docs/training.md)."""


class PretrainStage(CausalStageBase):
    type: Literal["pretrain"] = "pretrain"
    packing: bool = True


class SFTStage(CausalStageBase):
    type: Literal["sft"] = "sft"
    last_turn_only: bool = False
    packing: bool = False
    system_prompt: str | None = None


class RewardStage(StageBase):
    type: Literal["reward"] = "reward"
    lr: float = Field(default=1e-4, gt=0)


class DPOStage(StageBase):
    type: Literal["dpo"] = "dpo"
    loss: Literal["dpo", "ipo", "orpo", "kto", "simpo"] = "dpo"
    beta: float = Field(default=0.1, gt=0)
    lr: float = Field(default=5e-5, gt=0)


class RejectionSamplingStage(CausalStageBase):
    type: Literal["rejection_sampling"] = "rejection_sampling"
    k: int = Field(default=4, gt=0)
    top_n: int = Field(default=1, gt=0)
    temperature: float = Field(default=0.8, gt=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_new_tokens: int = Field(default=128, gt=0)
    scorer: str = "reward"
    """``reward`` (the reward stage of this recipe), a reward-model folder, or ``rule``."""


Stage = Annotated[
    Union[PretrainStage, SFTStage, RewardStage, DPOStage, RejectionSamplingStage],
    Field(discriminator="type"),
]
