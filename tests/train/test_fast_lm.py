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


def test_split_to_fit_with_a_cost_cuts_off_the_long_row_only_when_padding_costs_more():
    from medllm.train.fast_lm import _cheapest_runs, split_to_fit

    batch = _padded([100, 10, 12, 9, 11, 10, 12, 8])
    always = lambda rows, width: True  # noqa: E731
    cost = lambda rows, width: rows * width + 20  # noqa: E731   (20 tokens of overhead per forward)
    pieces = split_to_fit(batch, always, cost=cost)
    assert [tuple(p["input_ids"].shape) for p in pieces] == [(1, 100), (7, 12)]   # 100 + 84 + 40 < 800 + 20
    assert len(split_to_fit(_padded([12, 10, 11, 9]), always, cost=cost)) == 1   # little padding: one forward
    # the exact cut beats every greedy one: [9, 8] | [2, 2, 2] rather than cutting after the first row
    runs, total = _cheapest_runs([9, 8, 2, 2, 2], always, cost)
    assert [list(r) for r in runs] == [[0, 1], [2, 3, 4]] and total == 2 * 9 + 3 * 2 + 40
    # the budget still binds: no run over it even where it would be cheaper
    runs, _ = _cheapest_runs([4, 4, 4, 4], lambda rows, width: rows <= 2, cost)
    assert all(len(r) <= 2 for r in runs)


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


def test_a_batch_cut_for_its_padding_trains_like_the_whole_batch(tmp_path):
    """With room for the whole batch, rows of very different lengths still run as several
    forwards (split_padding): same losses as one padded forward."""
    rows = _varied_rows()
    whole = _stage_losses(tmp_path, "whole", rows, cpu_memory_gb=0)
    cut = _stage_losses(tmp_path, "cut", rows, cpu_memory_gb=100)
    assert cut["forwards"] > cut["global_step"], cut
    a = [x[1] for x in whole["loss_history"]]
    b = [x[1] for x in cut["loss_history"]]
    assert all(abs(x - y) <= 1e-4 * max(1.0, abs(x)) for x, y in zip(a, b)), (a, b)


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


def _batch(rows_ids, prompt_lens, pad_to=None):
    from medllm.train.fast_lm import CausalCollator

    rows = [{"input_ids": ids, "labels": [-100] * n + ids[n:]} for ids, n in zip(rows_ids, prompt_lens)]
    return CausalCollator(pad_id=0, pad_to_multiple_of=pad_to)(rows)


def test_shared_prefix_plan_saves_the_most_tokens_and_never_covers_a_target():
    from medllm.train.fast_lm import plan_shared_prefix

    system = list(range(100, 120))                       # 20 tokens every row but the last shares
    rows = [system + [1, 2, 3, 4, 5, 6], system + [7, 8, 9, 10], system + [1, 2, 11, 12, 13],
            [99] + system[1:] + [5, 6, 7]]
    plan = plan_shared_prefix(_batch(rows, [23, 22, 22, 21]), min_saved=1)
    assert plan.length == 20 and plan.saved == 2 * 20                   # 4 rows, 2 distinct prefixes
    assert plan.inverse.tolist()[:3] == [plan.inverse[0].item()] * 3 and plan.inverse[3] != plan.inverse[0]
    assert sorted(plan.first.tolist()) == [0, 3]
    # a target inside the shared part caps the prefix before it: row 1's answer starts at token 10
    capped = plan_shared_prefix(_batch(rows, [23, 11, 22, 21]), min_saved=1)
    assert capped.length == 10 and capped.saved == 20
    assert plan_shared_prefix(_batch(rows, [23, 22, 22, 21]), min_saved=41) is None   # not worth a forward
    assert plan_shared_prefix(_batch([[1, 2, 3], [4, 5, 6]], [1, 1]), min_saved=1) is None   # nothing shared


def _system_rows():
    system = "You are a careful assistant for questions about the colour of the sky and the sea. " * 2
    rows = []
    for k in (1, 5, 2, 7, 3, 1):
        msgs = [{"role": "user", "content": "why is the sky blue " * k},
                {"role": "assistant", "content": "Rayleigh scattering of sunlight " * (1 + k % 3)}]
        rows.append({"messages": ([{"role": "system", "content": system}] if k != 7 else []) + msgs})
    return rows


def test_a_shared_prompt_prefix_trains_exactly_like_every_row_computing_it(tmp_path, monkeypatch):
    """Computing the system turn once per distinct prefix (its cache indexed out to every row) gives
    the same losses step by step and the same trained weights as running every row whole."""
    from safetensors.torch import load_file

    from medllm.train.fast_lm import FastCausalLMTrainer

    monkeypatch.setattr(FastCausalLMTrainer, "prefix_min_saved", 32)

    rows = _system_rows()
    shared = _stage_losses(tmp_path, "shared", rows, cpu_memory_gb=0)
    whole = _stage_losses(tmp_path, "whole", rows, cpu_memory_gb=0, share_prefix=False)
    assert shared["prefix_tokens_saved"] >= 4 * 30 and "prefix_tokens_saved" not in whole
    a = [x[1] for x in shared["loss_history"]]
    b = [x[1] for x in whole["loss_history"]]
    assert len(a) == 2 and all(abs(x - y) <= 1e-5 * max(1.0, abs(x)) for x, y in zip(a, b)), (a, b)
    assert shared["tokens"] == whole["tokens"]
    wa = load_file(str(next((tmp_path / "shared").rglob("merged/*.safetensors"))))
    wb = load_file(str(next((tmp_path / "whole").rglob("merged/*.safetensors"))))
    for name, t in wa.items():
        assert torch.allclose(t.float(), wb[name].float(), atol=1e-6, rtol=1e-5), name


def test_fused_head_ce_in_bf16_matches_autograd_through_the_fp32_loss():
    torch.manual_seed(0)
    weight = (torch.randn(300, 32) * 0.1).bfloat16().requires_grad_()
    hidden = torch.randn(70, 32).bfloat16().requires_grad_()
    targets = torch.randint(0, 300, (70,))
    plain = F.cross_entropy(F.linear(hidden, weight).float(), targets, reduction="sum") / 7
    g_h, g_w = torch.autograd.grad(plain, [hidden, weight])
    for chunk in (16, 1024):
        loss = _fused(hidden, weight, targets, chunk) / 7
        c_h, c_w = torch.autograd.grad(loss, [hidden, weight])
        assert c_h.dtype == c_w.dtype == torch.bfloat16
        torch.testing.assert_close(loss, plain, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(c_h.float(), g_h.float(), atol=2e-3, rtol=2e-2)
        torch.testing.assert_close(c_w.float(), g_w.float(), atol=2e-3, rtol=2e-2)


def _fused(hidden, weight, targets, chunk):
    from medllm.train.fast_lm import _LinearCrossEntropy

    return _LinearCrossEntropy.apply(hidden, weight, None, targets, chunk)


def test_a_frozen_head_gets_no_weight_gradient_computed():
    head = torch.nn.Linear(16, 50, bias=False).requires_grad_(False)
    hidden = torch.randn(9, 16, requires_grad=True)
    loss = chunked_head_ce(hidden, head, torch.randint(0, 50, (9,)), 4)
    loss.backward()
    assert hidden.grad is not None and head.weight.grad is None


def test_a_sparse_tied_embedding_gives_the_dense_gradient_of_the_tied_weight():
    """The trainer switches a tied embedding to sparse gradients: the weight's gradient must be
    the same dense tensor as with a dense embedding backward."""
    from medllm.train.fast_lm import tied_embedding_for_sparse_grad

    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(50, 16)
            self.mid = torch.nn.Linear(16, 16)
            self.head = torch.nn.Linear(16, 50, bias=False)
            self.head.weight = self.emb.weight

        def get_input_embeddings(self):
            return self.emb

    torch.manual_seed(0)
    model = Tied()
    ids, targets = torch.randint(0, 50, (23,)), torch.randint(0, 50, (23,))
    grads = []
    for sparse in (False, True):
        model.zero_grad(set_to_none=True)
        model.emb.sparse = sparse
        chunked_head_ce(torch.tanh(model.mid(model.emb(ids))), model.head, targets, 8).backward()
        grads.append(model.emb.weight.grad)
    assert not grads[1].is_sparse
    torch.testing.assert_close(grads[1], grads[0])
    assert tied_embedding_for_sparse_grad(model, model.head) is model.emb
    untied = Tied()
    untied.head.weight = torch.nn.Parameter(untied.emb.weight.detach().clone())
    assert tied_embedding_for_sparse_grad(untied, untied.head) is None
