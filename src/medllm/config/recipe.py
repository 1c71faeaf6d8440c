"""The whole-run schema: one recipe file = model + data + stages + eval + serve."""
from __future__ import annotations

from pydantic import Field, field_validator

from medllm.config.base import Section
from medllm.config.data import DataConfig
from medllm.config.eval import EvalConfig
from medllm.config.model import ModelConfig
from medllm.config.serve import ServeConfig
from medllm.config.train import Stage


class Recipe(Section):
    name: str
    description: str = ""
    seed: int = 42
    output_dir: str = "runs"
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    stages: dict[str, Stage] = Field(default_factory=dict)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            raise ValueError("use letters, digits, '.', '_' and '-' only (it names the run folder)")
        return v
