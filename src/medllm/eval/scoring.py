"""Raw backend outputs -> per-example records (gold, prediction, per-example scores)."""
from __future__ import annotations

import re

from medllm.eval import extract
from medllm.eval.loaders import LETTERS
from medllm.eval.metrics import bertscore_f1, rouge_scores, squad_em, squad_f1
from medllm.eval.prompts import gold_index
from medllm.eval.spec import TaskSpec

LABEL_TYPES = ("relation", "classification", "nli")


def choice_labels(spec: TaskSpec, ex: dict, labels: list[str] | None) -> list[str]:
    return ex["choices"] if spec.type == "mcq" else list(labels or spec.labels or [])


def score_loglik(spec: TaskSpec, ex: dict, raw: list, continuations: list[str], labels) -> dict:
    lls = [r[0] for r in raw]
    gold = gold_index(spec, ex, labels)
    pred = max(range(len(lls)), key=lls.__getitem__)
    # acc_norm as lm-eval: log-likelihood divided by the length in characters of the choice
    # itself — lm-eval's target delimiter (one space) is not counted. Counting it (" yes" = 4
    # instead of 3) moved PubMedQA's acc_norm 8 points away from lm-eval's.
    norm = [ll / max(1, len(c[1:] if c.startswith(" ") else c)) for ll, c in zip(lls, continuations)]
    pred_norm = max(range(len(norm)), key=norm.__getitem__)
    names = choice_labels(spec, ex, labels)
    return {"id": ex["id"], "gold": names[gold] if spec.labels or labels else LETTERS[gold],
            "pred": names[pred] if spec.labels or labels else LETTERS[pred], "loglik": [round(x, 4) for x in lls],
            "scores": {"acc": float(pred == gold), "acc_norm": float(pred_norm == gold)}}


def score_generated(spec: TaskSpec, ex: dict, output: str, labels, judge=None) -> dict:
    t = spec.type
    rec = {"id": ex["id"], "output": output}
    if t == "mcq" or t in LABEL_TYPES:
        gold = gold_index(spec, ex, labels)
        names = choice_labels(spec, ex, labels)
        if t == "mcq" and not spec.labels:
            pred = extract.extract_letter(output, names)
            rec.update(gold=LETTERS[gold], pred=LETTERS[pred] if pred is not None else None)
        else:
            lab = extract.extract_label(output, names)
            pred = names.index(lab) if lab is not None else None
            rec.update(gold=names[gold], pred=lab)
        rec["scores"] = {"acc": float(pred == gold)}
    elif t == "multilabel":
        pred = extract.extract_labels(output, list(labels or spec.labels or []))
        rec.update(gold=ex["labels"], pred=pred, scores={"exact_match": float(set(pred) == set(ex["labels"]))})
    elif t == "extractive_qa":
        ans = output.strip().splitlines()[0] if output.strip() else ""
        rec.update(gold=ex["answers"], pred=ans,
                   scores={"exact_match": squad_em(ans, ex["answers"]), "f1": squad_f1(ans, ex["answers"])})
    elif t == "ner":
        types = {tag[2:] for tag in ex["tags"] if tag != "O"} | set(spec.labels or [])
        rec.update(gold=ex["tags"], pred=extract.entities_to_bio(output, ex["tokens"], types or None), scores={})
    elif t == "summarization":
        rec.update(gold=ex["target"], pred=output, scores={})
    elif t == "diagnosis":
        ranked = extract.extract_ranked_list(output, 5)
        hits = judge_matches(ranked, ex["diagnosis"], judge)
        first = next((i for i, h in enumerate(hits) if h), None)
        rec.update(gold=ex["diagnosis"], pred=ranked, match_rank=None if first is None else first + 1,
                   scores={f"top{k}": float(first is not None and first < k) for k in (1, 3, 5)})
    return rec


def add_corpus_scores(spec: TaskSpec, recs: list[dict], metrics: list[str], bertscore_model: str | None) -> list[str]:
    """Batch scorers (ROUGE, BERTScore) fill per-example scores; returns notes for the report."""
    notes = []
    if spec.type == "summarization":
        preds, refs = [r["pred"] for r in recs], [r["gold"] for r in recs]
        for r, s in zip(recs, rouge_scores(preds, refs)):
            r["scores"].update(s)
        if "bertscore_f1" in metrics:
            for r, f in zip(recs, bertscore_f1(preds, refs, bertscore_model)):
                r["scores"]["bertscore_f1"] = f
            notes.append("BERTScore uses a local encoder (default all-MiniLM-L6-v2, a non-standard backbone; "
                         "compare only between medllm runs)")
    return notes


# ------------------------------------------------------------------ diagnosis judge
def _norm(s: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", s.lower()))


def string_judge(candidate: str, golds: list[str]) -> bool:
    """Offline fallback judge: a gold name (or synonym) contained in the candidate or vice versa."""
    c = _norm(candidate)
    return bool(c) and any((g := _norm(x)) and (g in c or c in g) for x in golds)


JUDGE_PROMPT = ("You are checking a differential diagnosis.\nGold diagnosis: {gold}\nCandidate diagnosis: {cand}\n"
                "Do they name the same condition (synonyms and more specific forms count)? Answer yes or no.")


def judge_matches(ranked: list[str], golds: list[str], judge=None) -> list[bool]:
    if judge is None:
        return [string_judge(c, golds) for c in ranked]
    if not ranked:
        return []
    chats = [[{"role": "user", "content": JUDGE_PROMPT.format(gold=" / ".join(golds), cand=c)}] for c in ranked]
    return [extract.extract_label(o, ["yes", "no"]) == "yes" for o in judge.generate(chats, 4)]
