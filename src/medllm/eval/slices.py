"""Is a first-N ``limit`` slice representative of its file?

Public benchmark files are often sorted by label (PubMedQA's ``pqal_test.jsonl`` lists all 276
"yes" items first), so lm-eval-style ``--limit N`` keeps one class only and a model that always
answers that class scores 100%. ``first_n_problem`` compares the gold-label distribution of the
slice with the whole file's and says, loudly, when the slice is single-class or skewed.
"""
from __future__ import annotations

from collections import Counter

# Total-variation distance between slice and file label distributions above which the slice
# is called skewed: a seeded random 200 of PubMedQA's 500 test items sits near 0.03.
SKEW_TV = 0.2
# A class the file has but the slice lacks, where a random slice would expect this many of it
# (a random slice misses it with probability about exp(-10)).
MISSING_EXPECTED = 10


def gold_label(ex: dict):
    """The example's gold label as a hashable value, or None for tasks without one."""
    for key in ("label", "answer", "labels"):
        value = ex.get(key)
        if isinstance(value, list):
            return tuple(sorted(str(v) for v in value))
        if isinstance(value, (str, int)):
            return value
    return None


def _dist(examples: list[dict]) -> Counter:
    return Counter(gold_label(ex) for ex in examples)


def first_n_problem(kept: list[dict], everything: list[dict]) -> str | None:
    """A warning when the first ``len(kept)`` of ``everything`` is not a fair sample of it."""
    if len(kept) >= len(everything) or not kept:
        return None
    part, whole = _dist(kept), _dist(everything)
    if None in whole or len(whole) < 2:
        return None
    fmt = ", ".join(f"{k!r}: {v}" for k, v in whole.most_common())
    if len(part) == 1:
        only = next(iter(part))
        return (f"limit {len(kept)} with sample: first keeps a single gold label ({only!r} x {len(kept)}) of a file "
                f"with {len(whole)} ({fmt}): the file is sorted by label, so always answering {only!r} scores 100% - "
                f"use sample: random (seeded) or drop the limit")
    missing = [k for k in whole if k not in part and whole[k] * len(kept) / len(everything) >= MISSING_EXPECTED]
    tv = 0.5 * sum(abs(part[k] / len(kept) - whole[k] / len(everything)) for k in set(part) | set(whole))
    if tv > SKEW_TV or missing:
        return (f"limit {len(kept)} with sample: first keeps a label mix far from the file's (total variation "
                f"{tv:.2f}" + (f", no {', '.join(map(repr, missing))}" if missing else "") + f"; file: {fmt}): the file looks sorted - use sample: random (seeded) or drop the limit")
    return None
