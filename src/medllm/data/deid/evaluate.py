"""Precision/recall of the de-identifier per identifier type on the synthetic corpus.

A planted identifier counts as found when predicted spans (of any type: it is removed either way)
cover at least ``min_cover`` of its characters; a predicted span is correct when it overlaps a planted one.
Type-strict recall (the predicted type also matches) is reported alongside."""
from __future__ import annotations

from collections import defaultdict

from medllm.progress import progress


def evaluate_deid(notes: list[dict], deid, min_cover: float = 0.8) -> dict:
    tp = defaultdict(int)
    strict = defaultdict(int)
    gold_n = defaultdict(int)
    pred_n = defaultdict(int)
    pred_ok = defaultdict(int)
    misses: dict[str, list[str]] = defaultdict(list)
    false_pos: dict[str, list[str]] = defaultdict(list)
    for note in progress(notes, desc="deid-eval", unit="note"):
        text = note["text"]
        pred = deid.analyze(text)
        for g in note["spans"]:
            gold_n[g["entity"]] += 1
            covered = set()
            typed = False
            for p in pred:
                lo, hi = max(p.start, g["start"]), min(p.end, g["end"])
                if lo < hi:
                    covered.update(range(lo, hi))
                    typed |= p.entity == g["entity"]
            if len(covered) >= min_cover * (g["end"] - g["start"]):
                tp[g["entity"]] += 1
                strict[g["entity"]] += typed
            elif len(misses[g["entity"]]) < 5:
                misses[g["entity"]].append(text[max(0, g["start"] - 30):g["end"] + 10].replace("\n", " "))
        for p in pred:
            pred_n[p.entity] += 1
            if any(p.start < g["end"] and g["start"] < p.end for g in note["spans"]):
                pred_ok[p.entity] += 1
            elif len(false_pos[p.entity]) < 5:
                false_pos[p.entity].append(text[max(0, p.start - 20):p.end + 10].replace("\n", " "))
    per_type = {}
    for e in sorted(set(gold_n) | set(pred_n)):
        per_type[e] = {
            "gold": gold_n[e], "predicted": pred_n[e],
            "recall": round(tp[e] / gold_n[e], 4) if gold_n[e] else None,
            "recall_type_strict": round(strict[e] / gold_n[e], 4) if gold_n[e] else None,
            "precision": round(pred_ok[e] / pred_n[e], 4) if pred_n[e] else None,
        }
    total_gold, total_tp = sum(gold_n.values()), sum(tp.values())
    total_pred, total_ok = sum(pred_n.values()), sum(pred_ok.values())
    return {"notes": len(notes), "min_cover": min_cover,
            "overall": {"recall": round(total_tp / max(total_gold, 1), 4), "precision": round(total_ok / max(total_pred, 1), 4)},
            "per_type": per_type, "missed_examples": dict(misses), "false_positive_examples": dict(false_pos)}
