"""Small canonical datasets for training tests (built in memory, no shared data)."""
from __future__ import annotations

import pytest


def sft_rows(n: int = 24) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                          {"role": "assistant", "content": f"It is {2 * i}."},
                          {"role": "user", "content": "And doubled?"},
                          {"role": "assistant", "content": f"Then it is {4 * i}."}]} for i in range(n)]


def pref_rows(n: int = 16) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": f"Is fever {i} serious?"}],
             "chosen": [{"role": "assistant", "content": "See a doctor if it lasts more than three days."}],
             "rejected": [{"role": "assistant", "content": "no no no no"}]} for i in range(n)]


@pytest.fixture
def sft_ds():
    from datasets import Dataset

    return Dataset.from_list(sft_rows())


@pytest.fixture
def pref_ds():
    from datasets import Dataset

    return Dataset.from_list(pref_rows())


@pytest.fixture
def text_ds():
    from datasets import Dataset

    return Dataset.from_list([{"text": f"Document {i}: hypertension is treated with lifestyle change "
                                       f"and drugs such as ACE inhibitors. " * 3, "source": "t"} for i in range(12)])


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models are overhead-bound: one thread is faster than two fighting a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
