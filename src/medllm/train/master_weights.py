"""bf16 weights with fp32 master weights, for full fine-tuning in one CPU process.

Under bf16 autocast with fp32 weights every forward casts every weight to bf16 again, the
residual stream runs in fp32, and backward keeps fp32 *and* bf16 copies of many activations.
Here the trainable weights themselves are bf16 (the forward and backward a GPU bf16 run does),
while the optimizer steps fp32 master copies:

* each backward's bf16 gradient is added into its master's fp32 gradient the moment it is
  accumulated (a post-accumulate-grad hook, which then frees the bf16 gradient), so gradient
  accumulation sums in fp32;
* clipping and AdamW run on the masters; the optimizer's step hook writes them back to the
  bf16 weights;
* checkpoints and the stage's outputs hold the fp32 masters, so a resumed run and the next
  stage start from exact weights, and the model leaves training as fp32 again.

Frozen weights compute in bf16 as well, their fp32 originals kept for saving; buffers (RoPE
frequencies) are left as they are. One process only: DDP
all-reduces the model's own gradients, which the hook takes away (``wanted`` checks).
Measured in docs/training.md ("bf16 weights with fp32 masters")."""
from __future__ import annotations

import contextlib
import os

import torch

ENV = "MEDLLM_BF16_MASTER_WEIGHTS"  # "0" turns it off (bench side ours-fp32w), "1" forces it on


def wanted(*, method: str, on_cpu: bool, autocast_bf16: bool, weights_dtype, world_size: int) -> bool:
    """Full fine-tuning of fp32 weights under bf16 autocast in a single CPU process."""
    setting = os.environ.get(ENV, "auto")
    if setting == "0":
        return False
    ok = method == "full" and weights_dtype == torch.float32 and world_size == 1
    if setting == "1":
        return ok
    return ok and on_cpu and autocast_bf16


class MasterWeights:
    def __init__(self, model: torch.nn.Module):
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.masters = {n: p.detach().clone().float() for n, p in self.named}
        # Frozen fp32 weights (adapter.freeze_embeddings / freeze_layers) compute in bf16 too: an fp32
        # embedding would make the whole residual stream fp32. Their fp32 originals are kept for saving.
        self.frozen = [(n, p) for n, p in model.named_parameters()
                       if not p.requires_grad and p.dtype == torch.float32]
        self.originals = {n: p.data for n, p in self.frozen}
        self._hooks = [p.register_post_accumulate_grad_hook(self._adder(self.masters[n])) for n, p in self.named]
        with torch.no_grad():
            for _, p in self.named + self.frozen:
                p.data = p.data.to(torch.bfloat16)

    @staticmethod
    def _adder(master: torch.Tensor):
        def add(p: torch.Tensor) -> None:
            if master.grad is None:
                master.grad = p.grad.float()
            else:
                master.grad.add_(p.grad)
            p.grad = None
        return add

    def param_groups(self, decay_names: set[str], weight_decay: float) -> list[dict]:
        decay = [m for n, m in self.masters.items() if n in decay_names]
        rest = [m for n, m in self.masters.items() if n not in decay_names]
        # the same two groups, in the same order, as Trainer.create_optimizer: checkpoints stay interchangeable
        return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]

    def master_list(self) -> list[torch.Tensor]:
        return list(self.masters.values())

    @torch.no_grad()
    def write_back(self, *_args) -> None:
        """After each optimizer step: the bf16 weights take the (rounded) masters, and the
        masters' gradients are dropped (Trainer zeroes only the model's, which are already gone)."""
        for n, p in self.named:
            p.data.copy_(self.masters[n])
            self.masters[n].grad = None

    @contextlib.contextmanager
    def fp32_view(self):
        """While inside (saving): trainable weights are the fp32 masters, frozen ones their fp32 originals."""
        held = {n: p.data for n, p in self.named + self.frozen}
        exact = {**self.masters, **self.originals}
        try:
            for n, p in self.named + self.frozen:
                p.data = exact[n]
            yield
        finally:
            for n, p in self.named + self.frozen:
                p.data = held[n]

    def finish(self) -> None:
        """Training is over: the model is fp32 again with the masters' values; hooks removed."""
        for h in self._hooks:
            h.remove()
        with torch.no_grad():
            for n, p in self.named:
                p.data = self.masters[n].detach()
                p.grad = None
            for n, p in self.frozen:
                p.data = self.originals[n]
        self._hooks = []


class MasterWeightsMixin:
    """Mixed into a ``transformers.Trainer`` subclass (before it). ``master_weights = True``
    before ``train()`` turns it on; the masters are made in ``create_optimizer``, i.e. after a
    resumed run has loaded its (fp32) checkpoint, so they start exact."""

    master_weights = False
    _masters: MasterWeights | None = None

    def create_optimizer(self, model=None):
        if not self.master_weights or self.optimizer is not None:
            return super().create_optimizer(model)
        self._masters = MasterWeights(self.model)
        decay = set(self.get_decay_parameter_names(self.model))
        cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
        self.optimizer = cls(self._masters.param_groups(decay, self.args.weight_decay), **kwargs)
        self.optimizer.register_step_post_hook(self._masters.write_back)
        return self.optimizer

    def _clip_grad_norm(self, model):
        if self._masters is None:
            return super()._clip_grad_norm(model)
        return torch.nn.utils.clip_grad_norm_(self._masters.master_list(), self.args.max_grad_norm)

    def _get_grad_norm(self, model, grad_norm=None):
        if self._masters is None or grad_norm is not None:
            return super()._get_grad_norm(model, grad_norm)
        return torch.nn.utils.clip_grad_norm_(self._masters.master_list(), float("inf"))

    def save_model(self, output_dir=None, _internal_call=False):
        view = self._masters.fp32_view() if self._masters is not None else contextlib.nullcontext()
        with view:
            return super().save_model(output_dir, _internal_call)

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:
            if self._masters is not None:
                self._masters.finish()
                self._masters = None
                # a best checkpoint loaded at the end went into bf16 weights: load it again, exactly
                if self.args.load_best_model_at_end and self.state.best_model_checkpoint:
                    self._load_best_model()
