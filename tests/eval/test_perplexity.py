"""The forgetting probe's perplexity is exp(mean token NLL), recomputed here with a plain
forward of the model (no backend code), for texts batched with padding and split in chunks."""
from __future__ import annotations

import math

import pytest


def _independent_nll(model, tok, text: str, max_len: int) -> tuple[float, int]:
    import torch
    import torch.nn.functional as F

    ids = [tok.eos_token_id] + tok(text, add_special_tokens=False)["input_ids"]   # first token after a boundary
    total, n = 0.0, 0
    for s in range(0, len(ids) - 1, max_len):          # each token predicted once, context restarts per chunk
        chunk = torch.tensor([ids[s:s + max_len + 1]])
        with torch.no_grad():
            logits = model(chunk[:, :-1]).logits[0].float()
        total += float(F.cross_entropy(logits, chunk[0, 1:], reduction="sum"))
        n += chunk.shape[1] - 1
    return total, n


@pytest.mark.parametrize("max_len", [512, 7])
def test_perplexity_is_exp_mean_token_nll(tiny_model_dir, max_len):
    from medllm.eval.backends import HFBackend
    from medllm.eval.forgetting import perplexity

    texts = ["Hypertension is treated with lifestyle change and ACE inhibitors.", "Fever.",
             "Metformin is a first-line drug for type 2 diabetes in adults with normal kidney function."]
    backend = HFBackend(tiny_model_dir, dtype="float32", batch_size=3)   # all three share one padded batch
    rows = [_independent_nll(backend.model, backend.tok, t, max_len) for t in texts]
    nll, n = sum(r[0] for r in rows), sum(r[1] for r in rows)
    got = perplexity(backend, texts, max_len=max_len)
    assert got["tokens"] == n
    assert got["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-4)
    assert [r[1] for r in backend.token_nll(texts, max_len=max_len)] == [r[1] for r in rows]
