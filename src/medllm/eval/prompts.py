"""Turn canonical examples into prompts: lm-eval-style loglik requests and chat prompts.

Few-shot exemplars are drawn with a seeded RNG from a dev pool (never the example itself),
so a run is reproducible and two models see exactly the same prompts.
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass

from medllm.eval.loaders import LETTERS
from medllm.eval.spec import TaskSpec


class PromptError(ValueError):
    pass


class _Fields(dict):
    def __missing__(self, key):
        raise KeyError(key)


def fields_for(spec: TaskSpec, ex: dict, labels: list[str] | None = None) -> dict:
    """The names a prompt template may use: the example's fields plus derived helpers."""
    out = {k: (v.strip() if isinstance(v, str) else v) for k, v in ex.items()}
    choices = ex.get("choices") or []
    out["options"] = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
    out["letters"] = ", ".join(LETTERS[:len(choices)])
    out["subject_text"] = str(ex.get("subject") or "medicine").replace("_", " ")
    out["labels_text"] = ", ".join(labels or spec.labels or [])
    if spec.type == "ner":
        out["text"] = " ".join(ex["tokens"])
    return out


def render(template: str, values: dict, *, task: str, where: str) -> str:
    try:
        return string.Formatter().vformat(template, (), _Fields(values))
    except KeyError as exc:
        raise PromptError(f"task '{task}': prompt uses {{{exc.args[0]}}} but example {where} has no such field "
                          f"(fields: {', '.join(sorted(values))})") from None


def choice_texts(ex: dict) -> list[str]:
    return list(ex.get("choices") or [])


def gold_text(spec: TaskSpec, ex: dict) -> str:
    """What a correct generative answer looks like (used for few-shot exemplars)."""
    t = spec.type
    if t == "mcq":
        return ex["choices"][ex["answer"]] if spec.labels else LETTERS[ex["answer"]]
    if t in ("relation", "classification", "nli"):
        return ex["label"]
    if t == "multilabel":
        return ", ".join(ex["labels"]) or "none"
    if t == "extractive_qa":
        return ex["answers"][0]
    if t == "summarization":
        return ex["target"]
    if t == "fact_qa":
        return ex.get("fact") or ex["answers"][0]
    if t == "diagnosis":
        return "1. " + ex["diagnosis"][0]
    if t == "ner":
        from medllm.eval.extract import bio_to_spans

        spans = bio_to_spans(ex["tokens"], ex["tags"])
        return "\n".join(f"{t}: {txt}" for t, txt in spans) or "none"
    raise PromptError(f"no gold text for task type {t}")


@dataclass
class LoglikRequest:
    context: str
    continuations: list[str]


def pick_shots(pool: list[dict], k: int, seed: int, exclude_id: str) -> list[dict]:
    if k == 0:
        return []
    rng = random.Random(f"{seed}:{exclude_id}")
    candidates = [e for e in pool if e["id"] != exclude_id]
    if len(candidates) < k:
        raise PromptError(f"few-shot pool has {len(candidates)} usable examples, {k} shots requested")
    return rng.sample(candidates, k)


def loglik_request(spec: TaskSpec, ex: dict, shots: list[dict], labels: list[str] | None = None) -> LoglikRequest:
    lp = spec.loglik
    if lp is None:
        raise PromptError(f"task '{spec.name}' has no loglik prompt; use mode: generate")
    values = fields_for(spec, ex, labels)
    parts = []
    for shot in shots:
        sv = fields_for(spec, shot, labels)
        cont = _continuations(spec, shot, labels)[_gold_index(spec, shot, labels)]
        parts.append(render(lp.prompt, sv, task=spec.name, where=shot["id"]) + cont)
    parts.append(render(lp.prompt, values, task=spec.name, where=ex["id"]))
    context = render(lp.description, values, task=spec.name, where=ex["id"]) + lp.fewshot_separator.join(parts)
    return LoglikRequest(context, _continuations(spec, ex, labels))


def _choices(spec: TaskSpec, ex: dict, labels: list[str] | None) -> list[str]:
    if spec.type == "mcq":
        return ex["choices"]
    return list(labels or spec.labels or [])


def _gold_index(spec: TaskSpec, ex: dict, labels: list[str] | None) -> int:
    if spec.type == "mcq":
        return ex["answer"]
    return _choices(spec, ex, labels).index(ex["label"])


def gold_index(spec: TaskSpec, ex: dict, labels: list[str] | None = None) -> int:
    return _gold_index(spec, ex, labels)


def _continuations(spec: TaskSpec, ex: dict, labels: list[str] | None) -> list[str]:
    tpl = spec.loglik.continuation
    return [tpl.format(choice=c, letter=LETTERS[i]) for i, c in enumerate(_choices(spec, ex, labels))]


def chat_messages(spec: TaskSpec, ex: dict, shots: list[dict], labels: list[str] | None = None) -> list[dict]:
    gp = spec.generate
    if gp is None:
        raise PromptError(f"task '{spec.name}' has no generate prompt; use mode: loglik")
    msgs = [{"role": "system", "content": gp.system}] if gp.system else []
    for shot in shots:
        msgs.append({"role": "user", "content": render(gp.prompt, fields_for(spec, shot, labels),
                                                        task=spec.name, where=shot["id"])})
        msgs.append({"role": "assistant", "content": gold_text(spec, shot)})
    msgs.append({"role": "user", "content": render(gp.prompt, fields_for(spec, ex, labels),
                                                    task=spec.name, where=ex["id"])})
    return msgs
