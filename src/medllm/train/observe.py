"""What a training run shows and leaves behind: a progress bar (loss, tokens/s, ETA),
the loss history, a loss-curve PNG and metrics.json per stage."""
from __future__ import annotations

import time
from pathlib import Path

from transformers import TrainerCallback

from medllm.io import atomic_write_bytes
from medllm.progress import progress


class ProgressAndHistory(TrainerCallback):
    def __init__(self, desc: str):
        self.desc = desc
        self.bar = None
        self.train: list[tuple[int, float]] = []
        self.eval: list[tuple[int, float]] = []
        self.trainer = None  # set by the stage so tokens/s can be shown
        self.t0 = None

    def on_train_begin(self, args, state, control, **kw):
        if state.is_local_process_zero:
            self.bar = progress(total=state.max_steps, desc=self.desc, unit="step")
            self.bar.update(state.global_step)
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        if "loss" in logs:
            self.train.append((state.global_step, float(logs["loss"])))
        if "eval_loss" in logs:
            self.eval.append((state.global_step, float(logs["eval_loss"])))
        if self.bar is not None:
            post = {}
            if self.train:
                post["loss"] = f"{self.train[-1][1]:.4f}"
            if self.eval:
                post["eval"] = f"{self.eval[-1][1]:.4f}"
            tokens = getattr(self.trainer, "tokens_seen", 0)
            if tokens and self.t0:
                post["tok/s"] = f"{tokens / (time.perf_counter() - self.t0):.0f}"
            self.bar.set_postfix(post)

    def on_train_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.close()


def plot_loss(path: Path, train: list[tuple[int, float]], evals: list[tuple[int, float]], title: str) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    if train:
        ax.plot(*zip(*train), label="train")
    if evals:
        ax.plot(*zip(*evals), marker="o", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train or evals:
        ax.legend()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
