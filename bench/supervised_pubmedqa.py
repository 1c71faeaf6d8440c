"""Summarise a supervised-PubMedQA run (configs/supervised-pubmedqa.yaml) against the majority class.

Reads the per-example predictions that `medllm run` wrote under RUN/stages/eval/{base,sft}/ and
writes one small JSON: per model and mode, accuracy and macro-F1 with percentile-bootstrap 95% CIs,
the always-"yes" baseline on the same items, and a paired bootstrap CI of (model - always-yes).

    python bench/supervised_pubmedqa.py RUN_DIR bench/results/supervised_pubmedqa.json [--note TEXT]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np

LABELS = ("yes", "no", "maybe")
RESAMPLES, SEED = 2000, 0


def macro_f1(gold: np.ndarray, pred: np.ndarray) -> float:
    f1s = []
    for k in range(len(LABELS)):
        tp = np.sum((pred == k) & (gold == k))
        fp, fn = np.sum((pred == k) & (gold != k)), np.sum((pred != k) & (gold == k))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def _ci(values) -> list[float]:
    return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]


def summarise(pred_file: Path) -> dict:
    rows = [json.loads(line) for line in pred_file.read_text().splitlines() if line.strip()]
    idx = {lab: i for i, lab in enumerate(LABELS)}
    gold = np.array([idx[r["gold"]] for r in rows])
    pred = np.array([idx.get(r.get("pred"), -1) for r in rows])   # unparseable answer = -1 (always wrong)
    yes = np.zeros_like(gold)
    rng = np.random.default_rng(SEED)
    boot = rng.integers(0, len(rows), size=(RESAMPLES, len(rows)))
    acc_b = [(pred[b] == gold[b]).mean() for b in boot]
    f1_b = [macro_f1(gold[b], pred[b]) for b in boot]
    diff_b = [(pred[b] == gold[b]).mean() - (yes[b] == gold[b]).mean() for b in boot]
    return {"n": len(rows), "acc": round(float((pred == gold).mean()), 4), "acc_ci95": _ci(acc_b),
            "macro_f1": round(macro_f1(gold, pred), 4), "macro_f1_ci95": _ci(f1_b),
            "always_yes_acc": round(float((yes == gold).mean()), 4),
            "always_yes_macro_f1": round(macro_f1(gold, yes), 4),
            "acc_minus_always_yes": round(float((pred == gold).mean() - (yes == gold).mean()), 4),
            "acc_minus_always_yes_ci95": _ci(diff_b),
            "predicted": dict(Counter(LABELS[p] if p >= 0 else "unparsed" for p in pred)),
            "gold": dict(Counter(LABELS[g] for g in gold))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    out = {"benchmark": "PubMedQA PQA-L official 500-item test split (pqal_test.jsonl)",
           "train": "PQA-L 500 labelled dev items (pqal_cv500.jsonl), disjoint from test",
           "scorer": "medllm eval: loglik = argmax log-likelihood of ' yes'/' no'/' maybe' after lm-eval's prompt; "
                     "generate = greedy chat answer parsed to yes/no/maybe",
           "bootstrap": f"percentile, {RESAMPLES} resamples, seed {SEED}",
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.processor() or
           platform.machine(), "load_average_now": os.getloadavg(), "note": a.note, "models": {}}
    for label in ("base", "sft"):
        res = json.loads((a.run_dir / "stages" / "eval" / label / "results.json").read_text())
        out["models"][label] = {"model": res["model"], "adapter": res.get("adapter"), "dtype": res.get("dtype"),
                                "tasks": {k: summarise(a.run_dir / "stages" / "eval" / label / t["predictions"])
                                          | {"seconds": t["seconds"]} for k, t in res["tasks"].items()}}
    sft = a.run_dir / "stages" / "sft" / "metrics.json"
    if sft.exists():
        m = json.loads(sft.read_text())
        out["sft"] = {k: m.get(k) for k in ("seconds", "train_loss", "global_step", "tokens", "tokens_per_s",
                                             "target_tokens", "trainable_params")}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: {t: (v["acc"], v["acc_ci95"], v["macro_f1"], v["acc_minus_always_yes_ci95"])
                          for t, v in m["tasks"].items()} for k, m in out["models"].items()}, indent=1))


if __name__ == "__main__":
    main()
