"""What a training run shows and leaves behind: a progress bar (loss, tokens/s, ETA),
the loss history, a loss-curve PNG and metrics.json per stage.

While it trains, every logged step is also appended to ``<stage>/log_history.jsonl`` (one
JSON object per line, written with one ``write`` on an O_APPEND file and flushed), so a
watcher (``medllm studio``) can draw the loss curve, tokens/s and ETA live. A reader may
see a half-written last line only if the process dies mid-write: it skips lines that do
not parse."""
from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

from transformers import TrainerCallback

from medllm.io import atomic_write_bytes
from medllm.progress import progress


LOG_HISTORY = "log_history.jsonl"


def append_jsonl_line(path: Path, record: dict) -> None:
    """One record = one write(2) on an O_APPEND descriptor: lines never interleave or tear
    between writers, and each is on disk before training goes on."""
    data = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_log_history(path: str | Path) -> list[dict]:
    """The records of a log_history.jsonl (skipping a torn or foreign line)."""
    out = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _keep_until(path: Path, step: int) -> None:
    """On resume from a checkpoint at ``step``: drop records of steps that will be re-run."""
    from medllm.io import atomic_write_text

    kept = [r for r in read_log_history(path) if int(r.get("step", 0)) <= step]
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in kept))


class ProgressAndHistory(TrainerCallback):
    def __init__(self, desc: str, log_path: str | Path | None = None):
        self.desc = desc
        self.log_path = Path(log_path) if log_path else None
        """Default: ``log_history.jsonl`` next to the trainer's ``output_dir`` (the stage's checkpoints/)."""
        self.start_step = 0
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
        self.start_step = state.global_step
        if self.log_path is None and getattr(args, "output_dir", None):
            self.log_path = Path(args.output_dir).parent / LOG_HISTORY
        if self.log_path is not None and state.is_world_process_zero:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            if state.global_step == 0:
                self.log_path.write_text("")          # a fresh start: an older attempt's curve is gone
            elif self.log_path.exists():
                _keep_until(self.log_path, state.global_step)
            self._write(state, {"event": "begin"})

    def on_step_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def _write(self, state, fields: dict) -> None:
        if self.log_path is None or not state.is_world_process_zero:
            return
        elapsed = time.perf_counter() - (self.t0 or time.perf_counter())
        done = state.global_step - self.start_step
        rec = {"step": state.global_step, "max_steps": state.max_steps,
               "epoch": round(state.epoch, 4) if state.epoch is not None else None,
               "time": round(time.time(), 3), "elapsed_s": round(elapsed, 2),
               # steps/s of this attempt x steps left; unknown until a step is done
               "eta_s": round(elapsed / done * (state.max_steps - state.global_step), 1) if done > 0 else None,
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        tokens = getattr(self.trainer, "tokens_seen", 0)
        if tokens and elapsed > 0:
            rec["tokens"] = int(tokens)
            rec["tokens_per_s"] = round(tokens / elapsed, 1)
        rec.update(fields)
        try:
            append_jsonl_line(self.log_path, rec)
        except OSError:  # a full disk must not kill training; the final metrics.json still has it all
            self.log_path = None

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        numeric = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if numeric:
            self._write(state, numeric)
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
        self._write(state, {"event": "end"})
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
