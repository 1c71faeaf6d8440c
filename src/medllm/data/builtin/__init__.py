"""Built-in demo sets from our medical knowledge base, addressable as ``builtin:demo/<kind>``."""
from __future__ import annotations

BUILTIN_SETS = ("demo/pretrain", "demo/sft", "demo/sft_facts", "demo/sft_compact", "demo/preference", "demo/mcq",
                "demo/free")
BUILTIN_KINDS = {"demo/pretrain": "text", "demo/sft": "sft", "demo/sft_facts": "sft", "demo/sft_compact": "sft",
                 "demo/preference": "preference",
                 "demo/mcq": "mcq", "demo/free": "fact_qa"}


def builtin_records(name: str, seed: int = 0) -> list[dict]:
    from medllm.data.builtin.free import free_records
    from medllm.data.builtin.mcq import mcq_records
    from medllm.data.builtin.training import (pretrain_records, preference_records, sft_compact_records,
                                              sft_fact_records, sft_records)

    name = name.removeprefix("builtin:")
    makers = {"demo/pretrain": pretrain_records, "demo/sft": sft_records, "demo/sft_facts": sft_fact_records,
              "demo/sft_compact": sft_compact_records,
              "demo/preference": preference_records, "demo/mcq": mcq_records, "demo/free": free_records}
    if name not in makers:
        raise KeyError(f"unknown built-in set '{name}' (have: {', '.join(BUILTIN_SETS)})")
    return makers[name](seed=seed)


def load_builtin(name: str, seed: int = 0):
    """A built-in demo set as a canonical ``datasets.Dataset`` (deterministic for ``seed``)."""
    from datasets import Dataset

    from medllm.data.loader import features_for

    name = name.removeprefix("builtin:")
    records = builtin_records(name, seed)
    return Dataset.from_list(records, features=features_for(BUILTIN_KINDS[name]))
