"""Data problems with ``file:line`` and the error that lists all of them."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    """1-based line of the record's first character (for Parquet: 1-based row)."""
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


class DataError(ValueError):
    """Raised when a source has problems and ``skip_invalid`` was not requested.
    ``str()`` lists every problem, one per line, so nothing has to be re-run to see them all."""

    def __init__(self, problems: list[Problem], *, limit: int = 200):
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:limit])
        more = f"\n  ... and {len(self.problems) - limit} more" if len(self.problems) > limit else ""
        super().__init__(f"{len(self.problems)} data problem(s):\n{shown}{more}")
