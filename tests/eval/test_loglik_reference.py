"""Fast loglik scoring (shared context, mask-free right padding, trees, fp32 head on bf16)
pinned to the naive reference: one unpadded full forward per (context, choice), log-softmax
over every position, read at the continuation tokens."""
from __future__ import annotations

import pytest

from medllm.eval.prompts import LoglikRequest


@pytest.fixture(scope="module")
def fp32_backend(tiny_model_dir):
    from medllm.eval.backends import HFBackend

    return HFBackend(tiny_model_dir, batch_size=4, dtype="float32")


def _naive(backend, ctx: str, cont: str, *, fp32_head: bool = False) -> tuple[float, bool]:
    import torch

    ctx_ids, cont_ids = backend._pair(ctx, cont)
    ids = torch.tensor([ctx_ids + cont_ids])
    with torch.no_grad():
        if fp32_head:  # bf16 decoder, then the head in fp32
            h = backend._decoder(input_ids=ids).last_hidden_state[0].float()
            logits = h @ backend._head.weight.float().T
        else:
            logits = backend.model(ids).logits[0].float()
    logp = logits.log_softmax(-1)
    at = [len(ctx_ids) - 1 + i for i in range(len(cont_ids))]
    lp = float(sum(logp[p, t] for p, t in zip(at, cont_ids)))
    return lp, all(int(logp[p].argmax()) == t for p, t in zip(at, cont_ids))


def _check(backend, reqs, tol=1e-4, **kw):
    got = backend.loglik(reqs)
    for req, row in zip(reqs, got):
        for cont, (lp, greedy) in zip(req.continuations, row):
            want_lp, want_greedy = _naive(backend, req.context, cont, **kw)
            assert lp == pytest.approx(want_lp, abs=tol), (req.context, cont)
            if tol <= 1e-4:
                assert greedy == want_greedy


# contexts from 1 to ~40 tokens, so every batch of 4 mixes lengths and carries right padding
MIXED = [("word " * n).strip() + " Answer:" for n in (0, 17, 3, 31, 8, 1, 22, 5, 12, 40, 2)]


def test_single_token_choices_mixed_lengths_match_naive(fp32_backend):
    reqs = [LoglikRequest(c, [" A", " B", " C", " D"]) for c in MIXED]
    _check(fp32_backend, reqs)


def test_multi_token_choices_mixed_lengths_match_naive(fp32_backend):
    reqs = [LoglikRequest(c, [" metformin first", " no", " insulin glargine daily"]) for c in MIXED]
    _check(fp32_backend, reqs)


def test_mixed_single_and_multi_token_requests_in_one_call(fp32_backend):
    reqs = [LoglikRequest(c, [" yes", " no", " maybe"] if i % 2 else [" heparin sodium", " aspirin"])
            for i, c in enumerate(MIXED)]
    _check(fp32_backend, reqs)


def test_per_choice_rows_path_matches_naive(fp32_backend, monkeypatch):
    """When context + all choices exceed max_len, each choice gets its own padded row."""
    calls = []
    real = fp32_backend._score_rows
    monkeypatch.setattr(fp32_backend, "_score_rows", lambda rows, desc: calls.append(len(rows)) or real(rows, desc))
    monkeypatch.setattr(fp32_backend, "max_len", 38)
    reqs = [LoglikRequest(("x " * n) + "Answer:", [" alpha beta gamma delta", " epsilon zeta eta theta"])
            for n in (30, 31, 29)]
    for r in reqs:  # a tree would not fit, one choice per row does
        ctx, cont = fp32_backend._pair(r.context, r.continuations[0])
        assert len(ctx) + 2 * len(cont) > 38 >= len(ctx) + len(cont)
    _check(fp32_backend, reqs)
    assert calls == [6]


def test_bf16_scores_use_an_fp32_head_on_the_selected_rows(tiny_model_dir):
    from medllm.eval.backends import HFBackend

    b = HFBackend(tiny_model_dir, batch_size=1, dtype="bfloat16")
    assert b.dtype == "bfloat16" and b._head_w is not None
    reqs = [LoglikRequest(c, [" A", " B", " C"]) for c in MIXED[:4]] + \
           [LoglikRequest(c, [" metformin first", " no"]) for c in MIXED[4:7]]
    # unpadded rows: the bf16 decoder output is the reference's bit for bit, so only the
    # head's precision can differ (a bf16 head is off by up to ~0.03 at these logits)
    _check(b, reqs, fp32_head=True)
    b.batch_size = 4  # padded bf16 batches: GEMM blocking changes bf16 rounding, so loosely
    _check(b, reqs, fp32_head=True, tol=2e-2)
