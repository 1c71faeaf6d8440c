"""SFT throughput: medllm's sft stage vs TRL SFTTrainer with its default SFTConfig.

Same model (smollm2-135m-instruct), same samples (first N of the shared medalpaca set,
one user + one assistant turn), same number of optimizer steps (one epoch of
steps x 8 samples). TRL gets prompt/completion records, so its default loss is on the
completion only, like ours on the assistant turn. medllm uses TRL's default
hyper-parameters (full fine-tuning, lr 2e-5, linear schedule, batch 8). ``--methods full,lora``
also runs LoRA (r 16, alpha 32, dropout 0.05, all linear layers) on both sides, TRL through its
``peft_config``, both at lr 2e-4 (TRL's 2e-5 default barely moves an adapter in 15 steps).
Side ``ours-nofit`` is medllm with ``cpu_memory_gb: 0`` (the recipe's 8-row micro-batch kept,
no automatic micro-batching): the A/B of that lever. Side ``ours-static`` keeps the static
micro-batch that ``memory_fit`` sizes for ``max_seq_len``-long rows (no splitting of only the
batches that do not fit, ``train.causal._split_batches`` switched off): the A/B of that lever.
Side ``ours-fp32base`` is LoRA with the recipe's ``model.dtype: float32`` (fp32 frozen base cast
under autocast in every forward, the former CPU default): the A/B of the bf16 frozen base.
Side ``ours-glibc`` is medllm under glibc's default malloc (the other ours sides get the
``GLIBC_TUNABLES`` the ``medllm`` command sets for itself, ``medllm.allocator``; TRL gets glibc's
defaults): the A/B of that lever.
Side ``ours-fp32w`` is full fine-tuning with fp32 weights under bf16 autocast (the former CPU
default; the other ours sides train bf16 weights against fp32 masters, ``train/master_weights.py``):
the A/B of that lever.
Side ``ours-noshare`` computes every row's whole prompt (``share_prefix: false``; the other ours
sides run the prompt prefix the rows share, SmolLM2's default system turn and the medalpaca
instruction, once per batch, ``train.fast_lm``): the A/B of that lever.
Side ``ours-onepiece`` runs every batch that fits the budget as one padded forward
(``split_padding: False``; the other ours sides also cut a batch where its padding costs more
than the extra forwards, ``train.fast_lm.split_to_fit``): the A/B of that lever.
Side ``ours-compile`` compiles every decoder layer with ``torch.compile(dynamic=True)``
(inductor); every ours side records the seconds of each forward/backward call
(``call_seconds``), so compile time shows as the excess of the first calls.

Each side runs in its own subprocess (peak RSS is per side), back to back, with the load
average recorded around each. Final loss is compared two ways: mean training loss of the
last 5 steps, and held-out loss of both final models on the same 32 samples computed by
one function. Writes bench/results/train_throughput-<date>-<time>.json.

    .venv/bin/python bench/train_throughput.py [--steps 15] [--order ours,trl] [--methods full,lora]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEDLLM_SHARED_DATA", REPO.parent / "shared" / "data")) / "instruct" / "medalpaca"
MODEL = "smollm2-135m-instruct"
BATCH = 8  # TRL's default per_device_train_batch_size
HELD_OUT = 32


def records(n_train: int):
    src = sorted(DATA.glob("*.json"))[0]
    raw = json.loads(src.read_text())
    rows = []
    for r in raw:
        user = (r["instruction"] + "\n\n" + r["input"]).strip() if r.get("input") else r["instruction"]
        if r.get("output", "").strip():
            rows.append({"user": user, "assistant": r["output"].strip()})
    return rows[:n_train], rows[n_train:n_train + HELD_OUT]


def held_out_loss(model, tok, rows) -> float:
    """Token-weighted CE on assistant tokens, fp32, identical for both sides."""
    import torch
    import torch.nn.functional as F

    from medllm.train.tokenize import IGNORE, tokenize_conversation

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for r in rows:
            enc = tokenize_conversation(tok, [{"role": "user", "content": r["user"]},
                                              {"role": "assistant", "content": r["assistant"]}], max_len=1024)
            ids = torch.tensor([enc["input_ids"]])
            labels = torch.tensor(enc["labels"][1:] + [IGNORE])
            logits = model(input_ids=ids).logits[0].float()
            keep = labels != IGNORE
            total += F.cross_entropy(logits[keep], labels[keep], reduction="sum").item()
            count += int(keep.sum())
    return total / max(count, 1)


LORA = {"method": "lora", "r": 16, "alpha": 32, "dropout": 0.05}
LORA_LR = 2e-4


def side_ours(steps: int, out: Path, method: str = "full", fit: bool = True, split: bool = True,
              fp32_base: bool = False, compile_layers: bool = False, share_prefix: bool = True,
              split_padding: bool = True) -> dict:
    from types import SimpleNamespace

    from datasets import Dataset

    import medllm.train.causal as causal
    from medllm.config.model import ModelConfig
    from medllm.train.fast_lm import FastCausalLMTrainer

    if not split:
        causal._split_batches = lambda ctx: None
    if compile_layers:
        load = causal.load_policy

        def load_compiled(ctx):
            model, tok, context = load(ctx)
            inner = model.get_base_model() if hasattr(model, "get_base_model") else model
            for layer in inner.model.layers:
                layer.compile(dynamic=True)
            return model, tok, context

        causal.load_policy = load_compiled
    call_seconds: list[float] = []
    step = FastCausalLMTrainer.training_step

    def timed_step(self, *a, **kw):
        t = time.perf_counter()
        try:
            return step(self, *a, **kw)
        finally:
            call_seconds.append(round(time.perf_counter() - t, 3))

    FastCausalLMTrainer.training_step = timed_step
    FastCausalLMTrainer.split_padding = split_padding
    recipe = SimpleNamespace(model=ModelConfig(dtype="float32"), seed=42) if fp32_base else None

    from medllm.config.train import SFTStage
    from medllm.models import load_causal_lm
    from medllm.train import run_stage

    train, held = records(steps * BATCH)
    ds = Dataset.from_list([{"messages": [{"role": "user", "content": r["user"]},
                                          {"role": "assistant", "content": r["assistant"]}]} for r in train])
    lora = method == "lora"
    stage = SFTStage(data=["bench"], adapter=LORA if lora else {"method": "full"}, lr=LORA_LR if lora else 2e-5,
                     lr_scheduler="linear", warmup_ratio=0.0, batch_size=BATCH, max_steps=steps, max_seq_len=1024,
                     log_every=1, share_prefix=share_prefix, **({} if fit else {"cpu_memory_gb": 0}))
    res = run_stage("sft", stage, recipe=recipe, base_model=MODEL, datasets={"bench": ds},
                    out_dir=out / f"ours-{method}", seed=42, resume=False)
    m = res.metrics
    model, tok = load_causal_lm(res.model_dir, dtype="float32", for_training=True)
    losses = [x[1] for x in m["loss_history"]]
    return {"tokens": m["tokens"], "seconds": m["seconds"], "tokens_per_s": m["tokens"] / m["seconds"],
            "final_train_loss_last5": sum(losses[-5:]) / len(losses[-5:]), "loss_history": losses,
            "micro_batch": m.get("micro_batch", BATCH), "grad_accum": m.get("grad_accum", 1),
            "forwards": m.get("forwards"), "forward_rows_max": m.get("forward_rows_max"),
            "weights_dtype": m.get("weights_dtype"), "call_seconds": call_seconds,
            "prefix_tokens_saved": m.get("prefix_tokens_saved", 0),
            "held_out_loss": held_out_loss(model, tok, held)}


def side_trl(steps: int, out: Path, method: str = "full") -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from medllm.models import load_causal_lm

    train, held = records(steps * BATCH)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": r["user"]}],
                             "completion": [{"role": "assistant", "content": r["assistant"]}]} for r in train])
    model, tok = load_causal_lm(MODEL, dtype="float32", for_training=True)
    peft = {}
    if method == "lora":
        from peft import LoraConfig

        peft = {"peft_config": LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                          target_modules="all-linear", task_type="CAUSAL_LM")}
    args = SFTConfig(output_dir=str(out / f"trl-{method}"), max_steps=steps, use_cpu=True,  # defaults otherwise
                     **({"learning_rate": LORA_LR} if method == "lora" else {}))
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, **peft)
    tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    if not losses:  # TRL's default logging_steps (10) can exceed a short run: use the run's mean
        losses = [h["train_loss"] for h in trainer.state.log_history if "train_loss" in h]
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "final_train_loss_last5": sum(losses[-5:]) / max(len(losses[-5:]), 1), "loss_history": losses,
            "logging_steps": args.logging_steps, "held_out_loss": held_out_loss(trainer.model, tok, held)}


def child(side: str, method: str, steps: int, out: Path, result: Path) -> None:
    os.environ.setdefault("MEDLLM_QUIET", "1")
    import medllm  # noqa: F401  (offline guard before transformers)

    load_before = os.getloadavg()
    if side == "trl":
        data = side_trl(steps, out, method)
    else:
        data = side_ours(steps, out, method, fit=side != "ours-nofit", split=side != "ours-static",
                         fp32_base=side == "ours-fp32base", compile_layers=side == "ours-compile",
                         share_prefix=side != "ours-noshare", split_padding=side != "ours-onepiece")
    data["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    data["loadavg_before"], data["loadavg_after"] = load_before, os.getloadavg()
    result.write_text(json.dumps(data))


def side_env(side: str) -> dict:
    """ours sides run with the malloc tunables the ``medllm`` command sets for itself
    (medllm.allocator); trl and ours-glibc with glibc's defaults, as a plain python process has."""
    from medllm.allocator import wanted

    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    tuned = wanted({})
    if side.startswith("ours") and side != "ours-glibc" and tuned:
        env["GLIBC_TUNABLES"] = tuned
    if side == "ours-fp32w":
        from medllm.train.master_weights import ENV

        env[ENV] = "0"
    return env


def _compare(ours: dict, trl: dict) -> dict:
    return {"speedup_tokens_per_s": ours["tokens_per_s"] / trl["tokens_per_s"],
            "held_out_loss_rel_diff": (ours["held_out_loss"] - trl["held_out_loss"]) / trl["held_out_loss"],
            "train_loss_last5_rel_diff": (ours["final_train_loss_last5"] - trl["final_train_loss_last5"])
            / trl["final_train_loss_last5"] if trl["final_train_loss_last5"] else None,
            "peak_rss_ratio": ours["peak_rss_mb"] / trl["peak_rss_mb"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--order", default="ours,trl", help="sides per method: ours, trl, ours-noshare, ours-onepiece, ours-nofit, ours-static "
                    "(a side named twice is kept as name, name#2, ...: bracket the noisy machine)")
    ap.add_argument("--methods", default="full")
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--method", default="full", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        return child(a.side, a.method, a.steps, Path(a.out), Path(a.result))
    sides = a.order.split(",")
    summary: dict = {"model": MODEL, "steps": a.steps, "batch": BATCH, "data": str(DATA.name),
                     "cpu_count": os.cpu_count(), "cpu": _cpu_name(), "loadavg_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="medllm-bench-") as tmp:
        for method in a.methods.split(","):
            results = {}
            for side in sides:
                key = side if side not in results else f"{side}#{sum(k.split('#')[0] == side for k in results) + 1}"
                res = Path(tmp) / f"{key}-{method}.json"
                subprocess.run([sys.executable, __file__, "--side", side, "--method", method, "--steps",
                                str(a.steps), "--out", tmp, "--result", str(res)], check=True, env=side_env(side))
                results[key] = json.loads(res.read_text())
                results[key]["glibc_tunables"] = side_env(side).get("GLIBC_TUNABLES")
                print(method, key, {k: v for k, v in results[key].items() if k not in ("loss_history", "call_seconds")}, flush=True)
            block = {"sides": results}
            if "ours" in results and "trl" in results:
                block.update(_compare(results["ours"], results["trl"]))
            for key in results:
                if key not in ("ours", "trl") and "trl" in results:
                    block[f"{key}_vs_trl"] = _compare(results[key], results["trl"])
            summary[method] = block
    summary["when"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    out = REPO / "bench" / "results" / f"train_throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps({m: {k: v for k, v in b.items() if k != "sides"} for m, b in summary.items()
                      if isinstance(b, dict)}, indent=2))


def _cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    main()
