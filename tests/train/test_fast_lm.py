"""The chunked head + cross-entropy gives the same loss and gradients as the plain one."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from medllm.train.fast_lm import chunked_head_ce


def test_chunked_head_ce_matches_plain_loss_and_grads():
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False)
    hidden = torch.randn(37, 16, requires_grad=True)
    targets = torch.randint(0, 50, (37,))
    plain = F.cross_entropy(head(hidden), targets, reduction="sum")
    g_h, g_w = torch.autograd.grad(plain, [hidden, head.weight])
    for chunk in (5, 37, 1000):
        loss = chunked_head_ce(hidden, head, targets, chunk)
        c_h, c_w = torch.autograd.grad(loss, [hidden, head.weight])
        assert torch.allclose(loss, plain, atol=1e-4)
        assert torch.allclose(c_h, g_h, atol=1e-5) and torch.allclose(c_w, g_w, atol=1e-5)


def test_chunked_head_ce_without_targets_is_zero_and_differentiable():
    head = torch.nn.Linear(16, 50, bias=False)
    hidden = torch.randn(4, 16, requires_grad=True)[:0]
    loss = chunked_head_ce(hidden, head, torch.zeros(0, dtype=torch.long), 8)
    loss.backward()   # a batch with no answer token must not break the step
    assert float(loss) == 0.0
