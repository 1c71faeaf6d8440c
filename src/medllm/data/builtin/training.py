"""Generators turning the demo KB into training sets: pre-training paragraphs, single- and
multi-turn SFT dialogues, and preference pairs. Deterministic for a seed; samples stay short
(well under 200 tokens) so the 135M model can learn them in minutes on a CPU."""
from __future__ import annotations

import random

from medllm.data.builtin import templates as T
from medllm.data.builtin.kb import ATTRIBUTES, Fact, article, cap, compatible_wrong_values, entries, facts


def fact_sentence(f: Fact, template: str) -> str:
    return template.format(name=f.entity, Name=cap(f.entity), v=f.value, V=cap(f.value), a_v=article(f.value))


def _entity_facts(category: str, entry: dict) -> list[Fact]:
    return [Fact(category, entry["name"], a, entry[a], entry["ref"]) for a in ATTRIBUTES[category] if entry.get(a)]


# ------------------------------------------------------------------ pretrain
def _para_prose(fs, rng, cat):
    intro = rng.choice(T.INTRO[cat]).format(name=fs[0].entity, Name=cap(fs[0].entity))
    return " ".join([intro] + [fact_sentence(f, rng.choice(T.FACT[f.attribute])) for f in fs])


def _para_shuffled(fs, rng, cat):
    fs = list(fs)
    rng.shuffle(fs)
    return " ".join(fact_sentence(f, rng.choice(T.FACT[f.attribute])) for f in fs) + f" (Reference: {fs[0].ref}.)"


def _para_list(fs, rng, cat):
    label = {"symptoms": "Symptoms", "test": "First-line test", "treatment": "First-line treatment",
             "red_flag": "Red flag", "drug_class": "Class", "indication": "Main indication",
             "adverse_effect": "Major adverse effect", "contraindication": "Contraindication",
             "normal_range": "Normal range", "high": "High values", "low": "Low values"}
    lines = [f"{cap(fs[0].entity)}"] + [f"- {label[f.attribute]}: {f.value}" for f in fs]
    return "\n".join(lines + [f"Reference: {fs[0].ref}"])


def _para_qa(fs, rng, cat):
    parts = []
    for f in fs:
        parts.append(rng.choice(T.QUESTION[f.attribute]).format(name=f.entity))
        parts.append(fact_sentence(f, rng.choice(T.FACT[f.attribute])))
    return " ".join(parts)


def _para_pairs(fs, rng, cat):
    """Two facts at a time, each stated twice in different words (repetition helps a small model)."""
    picked = rng.sample(fs, k=min(2, len(fs)))
    out = []
    for f in picked:
        a, b = rng.sample(T.FACT[f.attribute], 2)
        out += [fact_sentence(f, a), fact_sentence(f, b)]
    return " ".join(out)


PARAGRAPH_STYLES = (_para_prose, _para_shuffled, _para_list, _para_qa, _para_pairs)


def pretrain_records(seed: int = 0, copies: int = 5) -> list[dict]:
    """``copies`` paragraphs per KB entry, each in a different style, in a seeded order."""
    rng = random.Random(seed)
    out = []
    for cat in ATTRIBUTES:
        for e in entries(cat):
            fs = _entity_facts(cat, e)
            styles = list(PARAGRAPH_STYLES)
            rng.shuffle(styles)
            for i in range(copies):
                out.append({"text": styles[i % len(styles)](fs, rng, cat), "source": "builtin:demo/pretrain"})
    rng.shuffle(out)
    return out


# ------------------------------------------------------------------ sft
def _answer(f: Fact, rng: random.Random) -> str:
    text = fact_sentence(f, rng.choice(T.FACT[f.attribute]))
    if f.attribute == "red_flag":
        text += " If this happens, seek emergency care immediately."
    return text


def sft_records(seed: int = 0, questions_per_fact: int = 2, system_rate: float = 0.2) -> list[dict]:
    rng = random.Random(seed + 1)
    out = []
    for f in facts():
        for q in rng.sample(T.QUESTION[f.attribute], questions_per_fact):
            msgs = [{"role": "user", "content": q.format(name=f.entity)},
                    {"role": "assistant", "content": _answer(f, rng)}]
            if rng.random() < system_rate:
                msgs.insert(0, {"role": "system", "content": rng.choice(T.SYSTEM_PROMPTS)})
            out.append({"messages": msgs, "source": "builtin:demo/sft"})
    for cat in ATTRIBUTES:  # one multi-turn dialogue per entry: first question names it, follow-ups do not
        for e in entries(cat):
            fs = _entity_facts(cat, e)
            first, rest = fs[0], rng.sample(fs[1:], k=min(2, len(fs) - 1))
            msgs = [{"role": "user", "content": rng.choice(T.QUESTION[first.attribute]).format(name=first.entity)},
                    {"role": "assistant", "content": _answer(first, rng)}]
            for f in rest:
                msgs += [{"role": "user", "content": T.FOLLOW_UP[f.attribute]},
                         {"role": "assistant", "content": _answer(f, rng)}]
            out.append({"messages": msgs, "source": "builtin:demo/sft"})
    rng.shuffle(out)
    return out


def sft_fact_records(seed: int = 0, system_rate: float = 0.2) -> list[dict]:
    """One fact per dialogue, asked in every training wording, answered directly with the value
    itself (red flags add the emergency advice): a 135M model learns to *state* a fact from short
    answers better than from full sentences that bury it (docs/demo.md)."""
    rng = random.Random(seed + 3)
    out = []
    for f in facts():
        answer = cap(f.value) + "."
        if f.attribute == "red_flag":
            answer += " This is an emergency: seek medical care immediately."
        for q in T.QUESTION[f.attribute]:
            msgs = [{"role": "user", "content": q.format(name=f.entity)},
                    {"role": "assistant", "content": answer}]
            if rng.random() < system_rate:
                msgs.insert(0, {"role": "system", "content": rng.choice(T.SYSTEM_PROMPTS)})
            out.append({"messages": msgs, "source": "builtin:demo/sft_facts"})
    rng.shuffle(out)
    return out


def sft_compact_records(seed: int = 0, system_prompt: str = "You are a careful medical assistant.") -> list[dict]:
    """Every fact of an entry asked in turn in one dialogue, answered by the value itself; one
    dialogue per training wording (each fact once in every wording over the set). The same
    exposures as ``sft_fact_records`` in ~20% fewer tokens: the system prompt and turn markers
    are paid once per entry, not once per fact. Every question names its entry, so a turn does
    not lean on the ones before it (the held-out questions are single-turn)."""
    rng = random.Random(seed + 5)
    out = []
    for cat in ATTRIBUTES:
        for e in entries(cat):
            fs = _entity_facts(cat, e)
            for wording in range(3):
                order = list(fs)
                rng.shuffle(order)
                msgs = [{"role": "system", "content": system_prompt}]
                for f in order:
                    questions = T.QUESTION[f.attribute]
                    answer = cap(f.value) + "."
                    if f.attribute == "red_flag":
                        answer += " This is an emergency: seek medical care immediately."
                    msgs += [{"role": "user", "content": questions[(wording + rng.randrange(3)) % 3].format(name=f.entity)},
                             {"role": "assistant", "content": answer}]
                out.append({"messages": msgs, "source": "builtin:demo/sft_compact"})
    rng.shuffle(out)
    return out


# ------------------------------------------------------------------ preference
def preference_records(seed: int = 0) -> list[dict]:
    """chosen = the correct, safe answer; rejected = another entry's value for the same attribute
    (a wrong fact) or, for red flags, advice that skips the emergency."""
    rng = random.Random(seed + 2)
    out = []
    for f in facts():
        prompt = [{"role": "user", "content": rng.choice(T.QUESTION[f.attribute]).format(name=f.entity)}]
        template = rng.choice(T.FACT[f.attribute])
        chosen = fact_sentence(f, template)
        wrong = compatible_wrong_values(f)
        if wrong:
            bad = Fact(f.category, f.entity, f.attribute, rng.choice(wrong), f.ref)
            out.append(_pair(prompt, chosen, fact_sentence(bad, template)))
        if f.attribute == "red_flag":
            ask = [{"role": "user", "content": f"I have {f.entity} and now {f.value}. Can this wait until my "
                                               "next appointment?"}]
            safe = T.SAFE_URGENT.format(V=cap(f.value), name=f.entity)
            out.append(_pair(ask, safe, rng.choice(T.UNSAFE)))
    rng.shuffle(out)
    return out


def _pair(prompt: list[dict], chosen: str, rejected: str) -> dict:
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "source": "builtin:demo/preference"}
