"""Base class for every recipe section: unknown keys are errors, never ignored."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True,
                              protected_namespaces=())
