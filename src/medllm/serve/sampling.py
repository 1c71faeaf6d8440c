"""Per-sequence sampling for the batched engine.

Every sequence in a batch carries its own sampling parameters and seed, so the
batch-wide HF ``generate`` logits processors cannot be applied to the whole
batch at once; rows are sampled one by one (at most ``max_batch`` rows)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor


@dataclass
class SamplingParams:
    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.2
    max_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    ignore_eos: bool = False      # benchmarks: always generate max_tokens

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


class RowSampler:
    """Chooses the next token of one sequence; owns that sequence's RNG.

    Repetition penalty uses transformers' processor (same formula as ``generate``).
    Top-k/top-p are applied to the k best logits only: the same distribution as
    HF's warpers (which mask and sort the whole 49k vocabulary), several times
    cheaper per token on CPU."""

    def __init__(self, params: SamplingParams, device: str = "cpu"):
        self.params = params
        self.generator = torch.Generator(device=device)
        if params.seed is not None:
            self.generator.manual_seed(int(params.seed))
        else:
            self.generator.seed()
        self.penalty = (RepetitionPenaltyLogitsProcessor(params.repetition_penalty)
                        if params.repetition_penalty and params.repetition_penalty != 1.0 else None)

    def next_token(self, logits: torch.Tensor, seen_ids: torch.Tensor) -> int:
        """``logits``: [vocab] for this row; ``seen_ids``: [n] prompt + generated ids."""
        scores = logits.float().unsqueeze(0)
        if self.penalty is not None:
            scores = self.penalty(seen_ids.unsqueeze(0), scores)
        scores = scores[0]
        p = self.params
        if p.greedy:
            return int(scores.argmax())
        if p.top_k and p.top_k > 0:
            vals, idx = torch.topk(scores, min(p.top_k, scores.shape[-1]))
        else:
            vals, idx = torch.sort(scores, descending=True)
        probs = torch.softmax(vals / p.temperature, dim=-1)
        if p.top_p < 1.0:
            # keep the smallest prefix whose mass reaches top_p (always >= 1 token)
            drop = (torch.cumsum(probs, -1) - probs) >= p.top_p
            probs = probs.masked_fill(drop, 0.0)
        choice = torch.multinomial(probs, 1, generator=self.generator)
        return int(idx[choice])
