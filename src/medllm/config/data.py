"""The ``data:`` section: sources, cleaning, de-identification, mixing."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from medllm.config.base import Section

DataKind = Literal["auto", "text", "sft", "preference", "ranked", "completion"]
DataFormat = Literal["auto", "alpaca", "sharegpt", "openai", "text", "preference", "ranked", "completion"]


class DataSource(Section):
    name: str
    path: str
    """A file, a folder of files, or ``builtin:demo/<kind>``."""
    format: DataFormat = "auto"
    kind: DataKind = "auto"
    columns: dict[str, str] = Field(default_factory=dict)
    """Column renames for odd files, e.g. ``{question: instruction, answer: output}``."""
    max_samples: int | None = Field(default=None, gt=0)
    group: str | None = None
    """Mixture group (e.g. biomedical / clinical / general) used by ``mix.weights``."""
    ranked_pairs: Literal["adjacent", "all"] = "adjacent"
    skip_invalid: bool = False
    """Keep going past bad rows (they are written with reasons to the data stage's rejects file)."""
    task: str | None = None
    """An eval task (built-in name such as ``pubmedqa`` or a task YAML) whose loader reads ``path``: each
    example becomes an ``sft`` conversation (the task's generate prompt -> its gold answer), for the
    supervised setting (train on a benchmark's train split, evaluate on its test split)."""


class CleanConfig(Section):
    enabled: bool = True
    exact_dedup: bool = True
    near_dedup: bool = True
    near_dedup_threshold: float = Field(default=0.85, gt=0, le=1)
    min_chars: int = Field(default=1, ge=0)
    max_chars: int | None = Field(default=None, gt=0)
    max_repetition: float = Field(default=0.5, gt=0, le=1)
    """Drop samples whose most frequent line/ngram share exceeds this."""
    language: str | None = None
    decontaminate: list[str] = Field(default_factory=list)
    """Evaluation files (or builtin task names) whose items must not appear in training data."""
    ngram: int = Field(default=13, ge=3)


class DeidConfig(Section):
    enabled: bool = False
    mode: Literal["surrogate", "mask"] = "surrogate"
    date_shift: bool = True
    keep_originals_in_audit: bool = False
    ner_model: str | None = None
    """Optional local spaCy/transformers NER model folder for names. Nothing is downloaded."""
    keep_facilities: bool = False
    """Keep hospital/clinic/school names (off: i2b2 counts HOSPITAL as PHI and a small clinic locates a patient)."""


class MixConfig(Section):
    by: Literal["tokens", "samples"] = "tokens"
    weights: dict[str, float] = Field(default_factory=dict)
    """Source name or group -> weight, e.g. ``{biomedical: 15, clinical: 1, general: 4}``."""
    total: int | None = Field(default=None, gt=0)
    """Total tokens/samples of the mixture (default: as many as the scarcest source allows)."""

    @field_validator("weights")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, w in v.items() if w <= 0]
        if bad:
            raise ValueError(f"mixture weights must be > 0 (got {', '.join(f'{k}={v[k]}' for k in bad)})")
        return v


class DataConfig(Section):
    sources: list[DataSource] = Field(default_factory=list)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    deid: DeidConfig = Field(default_factory=DeidConfig)
    mix: MixConfig | None = None
    val_fraction: float = Field(default=0.0, ge=0, lt=1)
