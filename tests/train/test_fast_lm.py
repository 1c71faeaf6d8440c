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


def _padded(lengths, width=None):
    from medllm.train.fast_lm import CausalCollator

    rows = [{"input_ids": list(range(1, n + 1)), "labels": [-100] + list(range(2, n + 1))} for n in lengths]
    return CausalCollator(pad_id=0)(rows)


def test_split_to_fit_keeps_every_row_once_each_piece_fits_and_cut_to_its_own_longest_row():
    from medllm.train.fast_lm import split_to_fit

    batch = _padded([5, 40, 7, 33, 6, 8])
    fits = lambda rows, width: rows * width <= 80  # noqa: E731  (a token budget of 80 padded positions)
    pieces = split_to_fit(batch, fits)
    assert len(pieces) > 1 and all(fits(*p["input_ids"].shape) for p in pieces)
    got = sorted(tuple(r[r != 0].tolist()) for p in pieces for r in p["input_ids"])
    assert got == sorted(tuple(r[r != 0].tolist()) for r in batch["input_ids"])
    assert sum(int((p["shift_labels"] != -100).sum()) for p in pieces) == int((batch["shift_labels"] != -100).sum())
    assert all(p["attention_mask"][:, -1].any() for p in pieces)  # no all-padding column left
    assert split_to_fit(batch, lambda r, w: True) == [batch]


def test_split_to_fit_cuts_packed_rows_only_at_sample_starts():
    from medllm.train.fast_lm import CausalCollator, split_to_fit

    rows = [{"input_ids": list(range(1, n + 1)), "labels": list(range(1, n + 1))} for n in (30, 10, 25, 5)]
    batch = CausalCollator(pad_id=0, packed=True)(rows)
    pieces = split_to_fit(batch, lambda rows, width: width <= 40)
    assert [p["input_ids"].shape[1] for p in pieces] == [40, 30]     # 30 + 10 | 25 + 5
    assert all(int(p["position_ids"][0, 0]) == 0 for p in pieces)


def _stage_losses(tmp_path, tag, rows, **over):
    from datasets import Dataset

    from medllm.config.train import SFTStage
    from medllm.train import run_stage

    stage = SFTStage(data=["t"], adapter={"method": "full"}, batch_size=len(rows), max_steps=2, max_seq_len=256,
                     bf16="false", lr=1e-3, log_every=1, **over)
    res = run_stage("sft", stage, base_model="tiny-llama", datasets={"t": Dataset.from_list(rows)},
                    out_dir=tmp_path / tag, seed=1)
    return res.metrics


def _varied_rows():
    return [{"messages": [{"role": "user", "content": "why is the sky blue " * k},
                          {"role": "assistant", "content": "Rayleigh scattering of sunlight " * (1 + k % 3)}]}
            for k in (1, 12, 2, 9, 3, 1)]


def test_a_batch_split_to_fit_the_budget_trains_like_the_whole_batch(tmp_path):
    """The CPU memory fit shrinks the micro-batch for max_seq_len rows; a single process keeps the
    batch and splits only what does not fit: same losses as the unsplit batch, more forwards."""
    from medllm.config.train import SFTStage
    from medllm.plan.shapes import read_shape
    from medllm.train.memory_fit import CPU_RUNTIME_GB, estimate_gb

    rows = _varied_rows()
    probe = SFTStage(adapter={"method": "full"}, batch_size=2, max_seq_len=256)
    budget = CPU_RUNTIME_GB + estimate_gb("sft", probe, read_shape("tiny-llama")) + 1e-4   # 2 x 256 fits, 6 do not
    whole = _stage_losses(tmp_path, "whole", rows, cpu_memory_gb=0)
    split = _stage_losses(tmp_path, "split", rows, cpu_memory_gb=budget)
    assert split["split_to_fit"] and split["micro_batch"] == len(rows) and split["grad_accum"] == 1
    assert split["forwards"] > split["global_step"] and split["forward_rows_max"] < len(rows)
    a = [x[1] for x in whole["loss_history"]]
    b = [x[1] for x in split["loss_history"]]
    assert len(a) == len(b) == 2 and all(abs(x - y) <= 1e-4 * max(1.0, abs(x)) for x, y in zip(a, b)), (a, b)


def test_a_packed_batch_has_the_loss_of_the_same_rows_padded(tmp_path):
    """Padding-free packing (position_ids restarting per sample) attends within each sample only:
    the first step's loss over one batch of all rows equals the padded batch's."""
    rows = _varied_rows()
    padded = _stage_losses(tmp_path, "padded", rows, cpu_memory_gb=0)
    packed = _stage_losses(tmp_path, "packed", rows, cpu_memory_gb=0, packing=True)
    x, y = padded["loss_history"][0][1], packed["loss_history"][0][1]
    assert abs(x - y) <= 1e-4 * max(1.0, abs(x)), (x, y)


def test_narrow_cpu_batches_run_eager_attention_with_the_sdpa_losses(tmp_path, monkeypatch):
    """CPU SDPA's backward is slow on short rows; narrow padded pieces switch to eager attention
    for their step only, and train exactly as SDPA does."""
    import medllm.train.fast_lm as fast_lm

    seen = []
    real_eager = fast_lm.use_eager_attention

    def spy(piece, max_width, cfg):
        used = real_eager(piece, max_width, cfg)
        seen.append((used, getattr(cfg, "_attn_implementation", None)))
        return used

    monkeypatch.setattr(fast_lm, "use_eager_attention", spy)
    rows = _varied_rows()
    eager = _stage_losses(tmp_path, "eager", rows, cpu_memory_gb=0)
    assert seen and all(used and impl == "sdpa" for used, impl in seen)   # sdpa restored after each step
    monkeypatch.setattr(fast_lm.FastCausalLMTrainer, "eager_attention_max_width", 0)
    seen.clear()
    sdpa = _stage_losses(tmp_path, "sdpa", rows, cpu_memory_gb=0)
    assert seen and not any(used for used, _ in seen)
    a = [x[1] for x in eager["loss_history"]]
    b = [x[1] for x in sdpa["loss_history"]]
    assert all(abs(x - y) <= 1e-4 * max(1.0, abs(x)) for x, y in zip(a, b)), (a, b)


def test_pad_to_multiple_of_rounds_widths_and_split_pieces_keep_them():
    from medllm.train.fast_lm import CausalCollator, split_to_fit

    rows = [{"input_ids": list(range(1, n + 1)), "labels": [-100] + list(range(2, n + 1))} for n in (5, 40, 7, 33)]
    batch = CausalCollator(pad_id=0, pad_to_multiple_of=16)(rows)
    assert batch["input_ids"].shape == (4, 48)
    assert int(batch["attention_mask"].sum()) == 5 + 40 + 7 + 33 and not batch["attention_mask"][:, 40:].any()
    assert (batch["shift_labels"][:, 40:] == -100).all()
    pieces = split_to_fit(batch, lambda rows, width: rows * width <= 100, multiple=16)
    assert len(pieces) > 1
    assert all(p["input_ids"].shape[1] % 16 == 0 and p["input_ids"].shape[1] <= 48 for p in pieces)
    assert sum(int(p["attention_mask"].sum()) for p in pieces) == int(batch["attention_mask"].sum())


def test_padding_to_a_multiple_trains_like_plain_padding(tmp_path):
    """Extra padding columns are masked and carry no target: the same losses, step by step."""
    rows = _varied_rows()
    plain = _stage_losses(tmp_path, "plain", rows, cpu_memory_gb=0)
    rounded = _stage_losses(tmp_path, "rounded", rows, cpu_memory_gb=0, pad_to_multiple_of=64)
    a = [x[1] for x in plain["loss_history"]]
    b = [x[1] for x in rounded["loss_history"]]
    assert len(a) == 2 and all(abs(x - y) <= 1e-4 * max(1.0, abs(x)) for x, y in zip(a, b)), (a, b)
    assert rounded["tokens"] == plain["tokens"]   # throughput counts real tokens, not padding
