"""Progress bars for every long step; silent in quiet mode (MEDLLM_QUIET=1)."""
from __future__ import annotations

from typing import Iterable, TypeVar

from tqdm.auto import tqdm

from medllm.paths import is_quiet

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, desc: str = "", total: int | None = None, unit: str = "it"):
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=is_quiet(), dynamic_ncols=True, leave=False)
