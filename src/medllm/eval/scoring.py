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


def score_generated(spec: TaskSpec, ex: dict, output: str, labels, judge=None, judge_stats: dict | None = None) -> dict:
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
    elif t == "fact_qa":   # free answer vs the fact's key parts (medllm.eval.factmatch)
        from medllm.eval.factmatch import matches

        key = {"answers": ex["answers"], "need_all": bool(ex.get("need_all"))}
        rec.update(question=ex["question"], gold=ex.get("fact") or "; ".join(ex["answers"]), pred=output,
                   scores={"acc": float(matches(output, key))})
    elif t == "diagnosis":
        ranked = extract.extract_ranked_list(output, 5)
        hits = judge_matches(ranked, ex["diagnosis"], judge, judge_stats)
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


def _abbreviation(name: str) -> str | None:
    """'Myocardial infarction (MI)' -> 'mi': a parenthesised short form given in the data."""
    m = re.search(r"\(([A-Za-z0-9-]{2,8})\)", name)
    return _norm(m.group(1)) if m else None


def accepted_names(golds: list[str]) -> list[str]:
    """Normalised gold name, synonyms and abbreviations given in the data (no guessing)."""
    out: list[str] = []
    for g in golds:
        for name in (re.sub(r"\([^)]*\)", " ", g), _abbreviation(g) or ""):
            n = _norm(name)
            if n and n not in out:
                out.append(n)
    return out


def string_judge(candidate: str, golds: list[str]) -> bool:
    """Offline default judge: the candidate, normalised, IS an accepted name (gold, synonym or
    abbreviation given in the data), optionally preceded by words that only make it more
    specific ('acute', 'left', 'bacterial' is not one of them). Whole names only, so 'gout'
    never matches 'pseudogout' and 'stroke' never matches 'heat stroke'. Conservative: a
    paraphrase not listed in the data is a miss; use a model judge for those."""
    names = set(accepted_names(golds))
    whole = _norm(candidate)
    for c in {whole, _norm(re.sub(r"\([^)]*\)", " ", candidate)), _abbreviation(candidate) or ""}:
        words = c.split()
        for i in range(len(words)):
            if " ".join(words[i:]) in names and all(w in SPECIFIERS for w in words[:i]):
                return True
    return False


# words that narrow a condition without changing it ("acute appendicitis" is appendicitis)
SPECIFIERS = {"acute", "chronic", "subacute", "severe", "mild", "moderate", "early", "late", "advanced",
              "recurrent", "primary", "secondary", "left", "right", "bilateral", "unilateral", "sided",
              "probable", "possible", "suspected", "likely", "complicated", "uncomplicated"}

JUDGE_SYSTEM = "You grade differential diagnoses. Reply with exactly one word: MATCH or NO_MATCH."
JUDGE_PROMPT = ("Gold diagnosis (with accepted synonyms): {gold}\nCandidate diagnosis: {cand}\n\n"
                "Does the candidate name the same condition as the gold diagnosis? A synonym or a more specific "
                "form of the same condition counts; a different condition that shares words does not "
                "(pseudogout is not gout; heat stroke is not stroke).\n"
                "Reply with exactly one word: MATCH or NO_MATCH.")
JUDGE_TOKENS = 16   # room for a one-word verdict after a chat template's preamble; the format is strict
JUDGE_RETRIES = 2


def parse_judge(text: str) -> bool | None:
    """MATCH -> True, NO_MATCH -> False, anything else -> None (retried, then counted)."""
    words = re.findall(r"[A-Za-z_]+", text.upper())
    verdicts = {w for w in words if w in ("MATCH", "NO_MATCH")}
    return (verdicts.pop() == "MATCH") if len(verdicts) == 1 else None


def judge_matches(ranked: list[str], golds: list[str], judge=None, stats: dict | None = None) -> list[bool]:
    """Which of ``ranked`` match the gold. With a model judge, an unparseable verdict is asked
    again (up to JUDGE_RETRIES times), then counted in ``stats['unparsed']`` and scored as no match."""
    if judge is None:
        return [string_judge(c, golds) for c in ranked]
    if not ranked:
        return []
    chats = [[{"role": "system", "content": JUDGE_SYSTEM},
              {"role": "user", "content": JUDGE_PROMPT.format(gold=" / ".join(golds), cand=c)}] for c in ranked]
    verdicts: list[bool | None] = [None] * len(ranked)
    todo = list(range(len(ranked)))
    for _ in range(1 + JUDGE_RETRIES):
        outs = judge.generate([chats[i] for i in todo], JUDGE_TOKENS)
        for i, o in zip(todo, outs):
            verdicts[i] = parse_judge(o)
        todo = [i for i in todo if verdicts[i] is None]
        if not todo:
            break
    if stats is not None:
        stats["judged"] = stats.get("judged", 0) + len(ranked)
        stats["unparsed"] = stats.get("unparsed", 0) + len(todo)
    return [bool(v) for v in verdicts]


def judge_description(judge, stats: dict) -> str:
    if judge is None:
        return ("judge: whole-name match against the gold name, synonyms and abbreviations in the data "
                "(string_judge; paraphrases not listed count as misses)")
    name = getattr(judge, "name", None) or type(judge).__name__
    return (f"judge: model {name}, strict MATCH/NO_MATCH, {JUDGE_RETRIES} retries; "
            f"{stats.get('unparsed', 0)} of {stats.get('judged', 0)} verdicts unparseable (scored as no match)")
