"""The key/value cache argument of a transformers forward, across the rename from
``past_key_values`` to ``cache`` (transformers 5.2x deprecates the old name; removal is
announced for 5.40, inside our ``<6`` pin)."""
from __future__ import annotations

import functools
import inspect


@functools.lru_cache(maxsize=None)
def _accepts_cache(cls) -> bool:
    return "cache" in inspect.signature(cls.forward).parameters


def cache_kwarg(model) -> str:
    """``"cache"`` or ``"past_key_values"``: the name the transformers model inside ``model``
    (a PEFT wrapper passes keyword arguments through) takes its cache by."""
    from transformers import PreTrainedModel

    inner = next((m for m in model.modules() if isinstance(m, PreTrainedModel)), model)
    return "cache" if _accepts_cache(type(inner)) else "past_key_values"


def output_cache(out):
    """The cache a forward returned, under either name."""
    cache = out.get("cache") if hasattr(out, "get") else None
    return cache if cache is not None else out.past_key_values
