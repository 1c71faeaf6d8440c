"""The built-in demo knowledge base and its generators."""
from __future__ import annotations

import re

import pytest

from medllm.data.builtin import BUILTIN_SETS, builtin_records, load_builtin
from medllm.data.builtin.kb import ATTRIBUTES, load_kb
from medllm.data.formats import sample_text

TRAINING_SETS = ("demo/pretrain", "demo/sft", "demo/sft_facts", "demo/sft_compact", "demo/preference")


def test_kb_has_150_referenced_entries():
    kb = load_kb()
    entries = [(cat, e) for cat in ATTRIBUTES for e in kb[cat]]
    assert len(entries) >= 150
    for cat, e in entries:
        assert e["ref"].strip(), e
        assert all(e[a].strip() for a in ATTRIBUTES[cat]), e
    names = [e["name"].lower() for _, e in entries]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", BUILTIN_SETS)
def test_generators_are_deterministic_per_seed(name):
    a, b, c = builtin_records(name, seed=3), builtin_records(name, seed=3), builtin_records(name, seed=4)
    assert a == b and len(a) > 0
    if name == "demo/free":   # held-out items are fixed so scores stay comparable across runs
        assert a == c
    else:
        assert a != c


def test_kinds_and_schema():
    kinds = {n: load_builtin(n) for n in BUILTIN_SETS}
    assert kinds["demo/pretrain"].column_names == ["text", "source"]
    assert set(kinds["demo/preference"].column_names) == {"prompt", "chosen", "rejected", "source"}
    sft = kinds["demo/sft"]
    assert any(sum(m["role"] == "user" for m in r["messages"]) > 1 for r in sft)  # multi-turn present
    assert any(sum(m["role"] == "user" for m in r["messages"]) == 1 for r in sft)


def test_samples_are_short(tiny_tokenizer):
    for name in TRAINING_SETS:
        lengths = [len(tiny_tokenizer(sample_text(r))["input_ids"]) for r in builtin_records(name)]
        assert max(lengths) < 200, name


def test_mcq_items_are_well_formed():
    items = builtin_records("demo/mcq", seed=0)
    assert 280 <= len(items) <= 320
    assert len({i["id"] for i in items}) == len(items)
    for it in items:
        assert len(it["choices"]) == 4 and len(set(it["choices"])) == 4
        assert 0 <= it["answer"] < 4
    answers = [it["answer"] for it in items]
    assert max(answers.count(k) for k in range(4)) < 0.4 * len(items)  # the position is shuffled
    # same questions for every seed (comparable scores), only the answer position moves
    other = builtin_records("demo/mcq", seed=9)
    assert [i["question"] for i in other] == [i["question"] for i in items]
    assert [i["choices"][i["answer"]] for i in other] == [i["choices"][i["answer"]] for i in items]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def test_mcq_questions_never_appear_in_training_sets():
    training = " ".join(" ".join(_words(sample_text(r))) for n in TRAINING_SETS
                        for seed in (0, 1) for r in builtin_records(n, seed=seed))
    training = f" {training} "
    for it in builtin_records("demo/mcq"):
        q = _words(it["question"])
        assert f" {' '.join(q)} " not in training, it["question"]
        for i in range(len(q) - 7):
            span = " ".join(q[i:i + 8])
            assert f" {span} " not in training, (it["question"], span)


def test_free_questions_never_appear_in_training_sets():
    """The free-answer wordings are new: no 8-word span (entity names included) of a question is in
    the training data, and no question template shares a 5-word span with a training or MCQ template."""
    from medllm.data.builtin import free, mcq, templates

    training = " ".join(" ".join(_words(sample_text(r))) for n in TRAINING_SETS
                        for seed in (0, 1) for r in builtin_records(n, seed=seed))
    training = f" {training} "
    items = builtin_records("demo/free")
    assert 140 <= len(items) <= 160 and len({i["id"] for i in items}) == len(items)
    for it in items:
        q = _words(it["question"])
        assert f" {' '.join(q)} " not in training, it["question"]
        for i in range(len(q) - 7):
            span = " ".join(q[i:i + 8])
            assert f" {span} " not in training, (it["question"], span)
    seen = [t for group in (templates.QUESTION, templates.FACT, templates.FOLLOW_UP, mcq.QUESTION)
            for ts in group.values() for t in ([ts] if isinstance(ts, str) else ts)]
    seen_text = " | ".join(" ".join(_words(t.replace("{name}", "|").replace("{Name}", "|"))) for t in seen)
    for ts in free.QUESTION.values():
        for t in ts:
            words = _words(t.replace("{name}", " ").replace("{Name}", " "))
            for i in range(len(words) - 4):
                assert " ".join(words[i:i + 5]) not in seen_text, (t, words[i:i + 5])


def test_free_items_state_their_fact():
    """Every held-out item's own fact sentence, as training states it, is scored correct, and the
    same sentence about another entry's value is not (so the key parts tell entries apart)."""
    from medllm.eval.factmatch import matches

    items = builtin_records("demo/free")
    wrong_hits = 0
    for i, it in enumerate(items):
        key = {"answers": it["answers"], "need_all": it["need_all"]}
        assert matches(f"It is {it['fact']}.", key), it
        other = next(o for o in items[i + 1:] + items[:i] if o["topic"] == it["topic"] and o["fact"] != it["fact"])
        wrong_hits += matches(f"It is {other['fact']}.", key)
    assert wrong_hits <= 0.05 * len(items)


def test_short_answer_sft_states_one_fact_in_every_training_wording():
    from medllm.data.builtin.kb import facts

    recs = builtin_records("demo/sft_facts")
    answers = [r["messages"][-1]["content"] for r in recs]
    assert len(recs) == 3 * len(facts())                   # 3 question wordings per fact
    assert all(a.endswith(".") and len(a.split()) < 40 for a in answers)
    red_flags = [f for f in facts() if f.attribute == "red_flag"]
    advised = [a for a in answers if a.endswith("This is an emergency: seek medical care immediately.")]
    assert len(advised) == 3 * len(red_flags)              # safety advice kept with every red flag


def test_preference_pairs_differ_and_include_safety():
    recs = builtin_records("demo/preference")
    assert all(r["chosen"][0]["content"] != r["rejected"][0]["content"] for r in recs)
    urgent = [r for r in recs if "emergency" in r["chosen"][0]["content"].lower()
              and "emergency" not in r["rejected"][0]["content"].lower()]
    assert len(urgent) >= 50


def test_compact_sft_asks_every_fact_once_per_wording_and_names_the_entry():
    from collections import Counter

    from medllm.data.builtin.kb import facts

    recs = builtin_records("demo/sft_compact")
    by_entity = Counter()
    for r in recs:
        assert r["messages"][0]["role"] == "system"
        users = [m["content"] for m in r["messages"][1::2]]
        names = {f.entity for f in facts() if all(f.entity in u for u in users)}
        assert names, users                                  # every turn names the same entry
        by_entity[max(names, key=len)] += len(users)
    expected = Counter(f.entity for f in facts())
    assert by_entity == Counter({e: 3 * n for e, n in expected.items()})   # each fact 3 times
    answers = [m["content"] for r in recs for m in r["messages"][2::2]]
    assert all(len(a.split()) < 40 for a in answers)
    red = sum(a.endswith("seek medical care immediately.") for a in answers)
    assert red == 3 * sum(f.attribute == "red_flag" for f in facts())
