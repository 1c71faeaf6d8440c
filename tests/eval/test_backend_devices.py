"""Every tensor of the HF backend's scoring and generation goes to the model's device, and a
bf16 model is scored as such. On a CPU-only machine a second device is simulated: tensors
that went through the backend's device move are tagged, the model only accepts tagged
inputs, and any arithmetic mixing a tagged with an untagged tensor raises, exactly as a
CUDA model fed CPU tensors would."""
from __future__ import annotations

import pytest
import torch

from medllm.eval.prompts import LoglikRequest


class OnModelDevice(torch.Tensor):
    """A tensor 'on the model's device'. Mixing it with a plain tensor (one left on the CPU)
    in any op raises."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat = []

        def walk(x):
            if isinstance(x, torch.Tensor):
                flat.append(x)
            elif isinstance(x, (list, tuple)):
                for y in x:
                    walk(y)
            elif isinstance(x, dict):
                for y in x.values():
                    walk(y)

        walk(args)
        walk(kwargs)
        tagged = [isinstance(t, OnModelDevice) for t in flat]
        # 0-d tensors are scalars (moved implicitly by torch); everything else must agree
        plain_big = [t for t, tg in zip(flat, tagged) if not tg and t.dim() > 0]
        if any(tagged) and plain_big:
            raise RuntimeError(f"{getattr(func, '__name__', func)}: a tensor not on the model's device "
                               f"(shape {tuple(plain_big[0].shape)}) meets one that is")
        return super().__torch_function__(func, types, args, kwargs)


def _tag(t):
    return t.as_subclass(OnModelDevice)


def _plain(x):
    return x.as_subclass(torch.Tensor) if isinstance(x, torch.Tensor) else x


def _require_tagged(kwargs, what):
    for k, v in kwargs.items():
        if isinstance(v, torch.Tensor):
            assert isinstance(v, OnModelDevice), f"{what}: {k} was not moved to the model's device"


class _Wrapped:
    def __init__(self, module, what):
        self.module, self.what = module, what

    def __call__(self, *args, **kwargs):
        for a in args:
            assert isinstance(a, OnModelDevice), f"{self.what}: positional input not on the model's device"
        _require_tagged(kwargs, self.what)
        out = self.module(*[_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()})
        if isinstance(out, torch.Tensor):
            return _tag(out)
        out.last_hidden_state = _tag(out.last_hidden_state)
        return out


@pytest.fixture
def spied_backend(tiny_model_dir, monkeypatch):
    from medllm.eval.backends import HFBackend

    be = HFBackend(tiny_model_dir, batch_size=2, dtype="float32")
    monkeypatch.setattr(be, "_put", _tag)
    be._decoder = _Wrapped(be._decoder, "decoder")
    be._head = _Wrapped(be._head, "lm head")
    real_generate = be.model.generate
    seen = {}

    def generate(**kw):
        _require_tagged(kw, "generate")
        seen.update(kw)
        return _tag(real_generate(**{k: _plain(v) for k, v in kw.items()}))

    monkeypatch.setattr(be.model, "generate", generate)
    be.seen = seen
    return be


def test_every_scoring_path_builds_its_tensors_on_the_model_device(spied_backend):
    reqs = [LoglikRequest("Question: which drug?\nAnswer:", [" A", " B", " C"]),          # shared context
            LoglikRequest("Short context:", [" heparin sodium", " aspirin", " no"]),      # tree row
            LoglikRequest("", [" aspirin", " warfarin"])]                                 # one row per choice
    rows = spied_backend.loglik(reqs)
    assert all(len(r) == len(q.continuations) and all(isinstance(lp, float) for lp, _ in r)
               for r, q in zip(rows, reqs))
    nll = spied_backend.token_nll(["Metformin lowers glucose."])
    assert nll[0][1] > 0 and nll[0][0] > 0


def test_generation_goes_to_the_model_device_and_stops_on_every_eos(spied_backend):
    from medllm.models import stop_token_ids

    out = spied_backend.generate([[{"role": "user", "content": "Name an anticoagulant."}]], max_new_tokens=4)
    assert isinstance(out[0], str)
    assert spied_backend.seen["eos_token_id"] == stop_token_ids(spied_backend.model, spied_backend.tok)


def test_the_spy_catches_a_tensor_left_on_the_cpu(spied_backend, monkeypatch):
    """The check above can fail: a backend that forgets one move is caught."""
    real = spied_backend._put
    calls = {"n": 0}

    def forgets_the_targets(t):
        calls["n"] += 1
        return t if t.dtype == torch.long and t.dim() == 1 and calls["n"] > 2 else real(t)

    monkeypatch.setattr(spied_backend, "_put", forgets_the_targets)
    with pytest.raises((RuntimeError, AssertionError)):
        spied_backend.loglik([LoglikRequest("Short context:", [" heparin sodium", " aspirin"])])


def test_bf16_model_scores_in_bf16_close_to_fp32(tiny_model_dir):
    from medllm.eval.backends import HFBackend

    reqs = [LoglikRequest("Question: which drug?\nAnswer:", [" A", " B"]),
            LoglikRequest("Short context:", [" heparin sodium", " aspirin"])]
    fp32 = HFBackend(tiny_model_dir, batch_size=2, dtype="float32")
    bf16 = HFBackend(tiny_model_dir, batch_size=2, dtype="bfloat16")
    assert bf16.dtype == "bfloat16" and next(bf16.model.parameters()).dtype == torch.bfloat16
    for a, b in zip(fp32.loglik(reqs), bf16.loglik(reqs)):
        for (la, _), (lb, _) in zip(a, b):
            assert lb == pytest.approx(la, rel=0.05, abs=0.3)
    assert isinstance(bf16.generate([[{"role": "user", "content": "Hi"}]], max_new_tokens=3)[0], str)
