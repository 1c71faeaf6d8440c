"""The held-out free-answer set: the KB's facts asked in wordings that neither the training
data (templates.py) nor the MCQ set use; the answer is generated and scored by
``medllm.eval.factmatch`` against the fact's key parts (stored with each item)."""
from __future__ import annotations

import random

from medllm.data.builtin.kb import NOT_INFORMATIVE, cap, entries, facts

FREE_SIZE = 150
# values with nothing to state (kept in training, never asked)
SKIP_VALUES = NOT_INFORMATIVE | {"rarely any side effects"}
NUMERIC = {"normal_range"}   # the figures are the fact (factmatch rule 3)
QUESTION = {
    "symptoms": ["What complaints would make you think of {name}?",
                 "Describe the typical presentation of {name} in a few words."],
    "test": ["Which diagnostic step should come first when {name} is considered?",
             "Name the investigation used first to establish {name}."],
    "treatment": ["Name the main first treatment used for {name}.",
                  "What would be started first to manage {name}?"],
    "red_flag": ["Name a danger sign in {name} that calls for emergency care.",
                 "What finding in a patient with {name} means they must be seen at once?"],
    "drug_class": ["Name the pharmacological class of {name}.",
                   "{Name} is classified as which kind of medication?"],
    "indication": ["Name the condition {name} is chiefly prescribed for.",
                   "What is the principal reason to give {name}?"],
    "adverse_effect": ["Name an important side effect of {name}.",
                       "What harm should people on {name} be warned about?"],
    "normal_range": ["Give the usual reference values for {name} in adults.",
                     "What numbers count as normal for {name}?"],
    "high": ["Which condition does an above-normal {name} usually signal?",
             "Name the usual reason for a {name} above normal."],
    "low": ["Which condition does a below-normal {name} usually signal?",
            "Name the usual reason for a {name} below normal."],
}


def free_records(seed: int = 0, size: int = FREE_SIZE) -> list[dict]:
    """``size`` items chosen once (the same for every ``seed``, so scores stay comparable)."""
    from medllm.eval.factmatch import key_parts

    items = []
    for f in facts():
        if f.attribute not in QUESTION or f.value in SKIP_VALUES:
            continue
        peers = [e[f.attribute] for e in entries(f.category) if e["name"] != f.entity and e.get(f.attribute)]
        key = key_parts(f.value, peers, numeric=f.attribute in NUMERIC)
        question = QUESTION[f.attribute][len(items) % 2].format(name=f.entity, Name=cap(f.entity))
        items.append({"question": question, "fact": f.value, "answers": list(key.parts), "need_all": key.need_all,
                      "topic": f"{f.category}/{f.attribute}", "entity": f.entity})
    chosen = sorted(random.Random(4321).sample(range(len(items)), min(size, len(items))))
    return [{"id": f"demo-free-{i:04d}", **items[i]} for i in chosen]
