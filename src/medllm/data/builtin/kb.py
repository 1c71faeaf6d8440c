"""The built-in demo medical knowledge base (kb.json, written for medllm) as facts.

A fact is (category, entity, attribute, value, ref). Categories and their attributes:
diseases: symptoms/test/treatment/red_flag; drugs: drug_class/indication/adverse_effect/
contraindication; labs: normal_range/high/low.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

ATTRIBUTES = {
    "diseases": ("symptoms", "test", "treatment", "red_flag"),
    "drugs": ("drug_class", "indication", "adverse_effect", "contraindication"),
    "labs": ("normal_range", "high", "low"),
}
# values that carry no fact worth asking about (kept in training text, never an MCQ answer)
NOT_INFORMATIVE = {"no usual clinical significance"}
STOPWORDS = {"with", "from", "that", "this", "into", "than", "over", "under", "such", "when", "which", "there",
             "their", "only", "more", "less", "very", "some", "other", "usually", "often", "about", "after",
             "before", "without", "being", "have", "used", "because", "like"}


@dataclass(frozen=True)
class Fact:
    category: str
    entity: str
    attribute: str
    value: str
    ref: str


@lru_cache(maxsize=1)
def load_kb() -> dict:
    text = resources.files("medllm.data.builtin").joinpath("kb.json").read_text(encoding="utf-8")
    return json.loads(text)


def entries(category: str) -> list[dict]:
    return load_kb()[category]


def facts(category: str | None = None) -> list[Fact]:
    out = []
    for cat, attrs in ATTRIBUTES.items():
        if category and cat != category:
            continue
        for e in entries(cat):
            out += [Fact(cat, e["name"], a, e[a], e["ref"]) for a in attrs if e.get(a)]
    return out


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 4 and w not in STOPWORDS}


def compatible_wrong_values(fact: Fact) -> list[str]:
    """Values of the same attribute from other entries of the same category that share no
    content word with the true value (so a distractor or rejected answer is not accidentally right)."""
    true_words = content_words(fact.value)
    seen, out = {fact.value.lower()}, []
    for e in entries(fact.category):
        v = e.get(fact.attribute)
        if not v or e["name"] == fact.entity or v.lower() in seen or v in NOT_INFORMATIVE:
            continue
        if content_words(v) & true_words:
            continue
        seen.add(v.lower())
        out.append(v)
    return out


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase
