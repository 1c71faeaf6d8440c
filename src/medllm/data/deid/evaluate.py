"""Precision/recall of the de-identifier per identifier type, on synthetic or hand-written gold notes.

A gold identifier counts as found when predicted spans (of any type: it is removed either way)
cover at least ``min_cover`` of its characters; a predicted span is correct when it overlaps a gold
one. Type-strict recall (the predicted type also matches) is reported alongside. A must-survive
clinical term (gold ``keep``) is "removed" when any predicted span touches it."""
from __future__ import annotations

from collections import defaultdict

from medllm.progress import progress


def evaluate_deid(notes: list[dict], deid, min_cover: float = 0.8, max_examples: int | None = 5) -> dict:
    tp = defaultdict(int)
    strict = defaultdict(int)
    gold_n = defaultdict(int)
    pred_n = defaultdict(int)
    pred_ok = defaultdict(int)
    misses: dict[str, list[str]] = defaultdict(list)
    false_pos: dict[str, list[str]] = defaultdict(list)
    removed_terms: list[str] = []
    keep_n = 0

    def room(lst):
        return max_examples is None or len(lst) < max_examples

    for note in progress(notes, desc="deid-eval", unit="note"):
        text = note["text"]
        pred = deid.analyze(text)
        where = f"{note['id']}: " if "id" in note else ""
        for g in note["spans"]:
            gold_n[g["entity"]] += 1
            covered = set()
            typed = False
            for p in pred:
                lo, hi = max(p.start, g["start"]), min(p.end, g["end"])
                if lo < hi:
                    covered.update(range(lo, hi))
                    typed |= p.entity == g["entity"] or {p.entity, g["entity"]} <= {"PHONE", "FAX"}
            if len(covered) >= min_cover * (g["end"] - g["start"]):
                tp[g["entity"]] += 1
                strict[g["entity"]] += typed
            elif room(misses[g["entity"]]):
                misses[g["entity"]].append(where + _context(text, g["start"], g["end"], 30))
        for p in pred:
            pred_n[p.entity] += 1
            if any(p.start < g["end"] and g["start"] < p.end for g in note["spans"]):
                pred_ok[p.entity] += 1
            elif room(false_pos[p.entity]):
                false_pos[p.entity].append(where + _context(text, p.start, p.end, 20))
        for k in note.get("keep", []):
            keep_n += 1
            if any(p.start < k["end"] and k["start"] < p.end for p in pred):
                removed_terms.append(where + _context(text, k["start"], k["end"], 20))
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
            "overall": {"gold": total_gold, "found": total_tp, "recall": round(total_tp / max(total_gold, 1), 4),
                        "precision": round(total_ok / max(total_pred, 1), 4)},
            "clinical_terms": {"checked": keep_n, "removed": len(removed_terms), "removed_list": removed_terms},
            "per_type": per_type, "missed_examples": dict(misses), "false_positive_examples": dict(false_pos)}


def _context(text: str, start: int, end: int, width: int) -> str:
    return (text[max(0, start - width):start] + "[" + text[start:end] + "]" + text[end:end + width // 3]).replace("\n", " ")


def table(report: dict) -> str:
    """The per-type table as Markdown (docs and the CLI print the same thing)."""
    rows = ["| type | gold | recall | type-strict recall | precision |", "|---|---:|---:|---:|---:|"]
    for e, r in report["per_type"].items():
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        rows.append(f"| {e} | {r['gold']} | {fmt(r['recall'])} | {fmt(r['recall_type_strict'])} | {fmt(r['precision'])} |")
    o, c = report["overall"], report["clinical_terms"]
    rows.append(f"| **all** | {o['gold']} | **{o['recall']:.3f}** | | **{o['precision']:.3f}** |")
    rows.append(f"\nclinical terms removed: {c['removed']} of {c['checked']}")
    return "\n".join(rows)
