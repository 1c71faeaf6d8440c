"""Per-sequence sampling for the batched engine.

Every sequence in a batch carries its own sampling parameters and seed, so the
batch-wide HF ``generate`` logits processors cannot be applied to the whole
batch at once; we apply transformers' own processors row by row instead
(batches are small, at most ``max_batch`` rows)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)


@dataclass
class SamplingParams:
    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.2
    max_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


class RowSampler:
    """Chooses the next token of one sequence; owns that sequence's RNG."""

    def __init__(self, params: SamplingParams, device: str = "cpu"):
        self.params = params
        self.generator = torch.Generator(device=device)
        if params.seed is not None:
            self.generator.manual_seed(int(params.seed))
        else:
            self.generator.seed()
        self.processors = []
        if params.repetition_penalty and params.repetition_penalty != 1.0:
            self.processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
        if not params.greedy:
            self.processors.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k and params.top_k > 0:
                self.processors.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                self.processors.append(TopPLogitsWarper(params.top_p))

    def next_token(self, logits: torch.Tensor, seen_ids: torch.Tensor) -> int:
        """``logits``: [vocab] for this row; ``seen_ids``: [n] prompt + generated ids."""
        scores = logits.float().unsqueeze(0)
        ids = seen_ids.unsqueeze(0)
        for proc in self.processors:
            scores = proc(ids, scores)
        if self.params.greedy:
            return int(scores.argmax(dim=-1))
        probs = torch.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))
