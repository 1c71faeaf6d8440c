"""The held-out multiple-choice set: same facts as training, asked in wordings that training
never uses, with distractors that are real values of the same attribute from other KB entries."""
from __future__ import annotations

import random

from medllm.data.builtin.kb import NOT_INFORMATIVE, cap, compatible_wrong_values, facts

MCQ_SIZE = 300
# attributes asked about (contraindications stay in training only: too many are shared across drugs)
QUESTION = {
    "symptoms": ["Which clinical picture best fits {name}?",
                 "Select the presentation most characteristic of {name}."],
    "test": ["Which investigation is the appropriate starting point once {name} is suspected?",
             "When {name} is on the differential, which workup step comes first?"],
    "treatment": ["For an uncomplicated case of {name}, which option is the usual initial therapy?",
                  "Which management approach is recommended up front for {name}?"],
    "red_flag": ["In a person with {name}, which finding should prompt emergency escalation?",
                 "Which feature makes {name} a medical emergency?"],
    "drug_class": ["{Name} is best categorised under which pharmacological group?",
                   "To which family of medicines does {name} belong?"],
    "indication": ["A prescriber would most likely choose {name} for which purpose?",
                   "Which clinical use is {name} primarily known for?"],
    "adverse_effect": ["Which unwanted effect is most closely associated with {name}?",
                       "Patients started on {name} should be counselled about which problem?"],
    "normal_range": ["Which value represents the expected adult reference interval for {name}?",
                     "Which figure would a laboratory report as unremarkable for {name}?"],
    "high": ["An elevated result for {name} most commonly points toward which explanation?",
             "A result for {name} above its reference interval is best explained by which option?"],
    "low": ["A result for {name} below its reference interval most often reflects what?",
            "Which explanation best accounts for a reduced {name} result?"],
}


def mcq_records(seed: int = 0, size: int = MCQ_SIZE) -> list[dict]:
    """``size`` items chosen once (independent of ``seed``, so scores stay comparable);
    ``seed`` only shuffles where the correct answer sits."""
    pick = random.Random(1234)
    items = []
    for f in facts():
        if f.attribute not in QUESTION or f.value in NOT_INFORMATIVE:
            continue
        wrong = compatible_wrong_values(f)
        if len(wrong) < 3:
            continue
        n = len(items)
        question = QUESTION[f.attribute][n % 2].format(name=f.entity, Name=cap(f.entity))
        items.append({"fact": f, "question": question, "distractors": pick.sample(wrong, 3)})
    chosen = sorted(pick.sample(range(len(items)), min(size, len(items))))
    rng = random.Random(seed)
    out = []
    for i in chosen:
        item = items[i]
        f = item["fact"]
        choices = [f.value] + item["distractors"]
        rng.shuffle(choices)
        out.append({"id": f"demo-mcq-{i:04d}", "question": item["question"], "choices": choices,
                    "answer": choices.index(f.value), "topic": f"{f.category}/{f.attribute}"})
    return out
