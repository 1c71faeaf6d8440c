"""The batching engine gives the same greedy tokens as HF generate, whatever
joins the batch when, and honours per-row sampling, stops and cancellation."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from medllm.serve.engine import BatchingEngine, GenRequest, QueueFull
from medllm.serve.sampling import SamplingParams

PROMPTS = ["The patient presented with chest pain and", "Hi", "Metformin is a first-line drug for type",
           "What is the normal adult resting heart rate? It is", "Aspirin"]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from medllm.models import load_causal_lm

    return load_causal_lm(tiny_model_dir, dtype="float32")


def _collect(engine, prompt_ids, params, delay=0.0):
    events, done = [], threading.Event()

    def cb(ev):
        events.append(ev)
        if ev.kind != "delta":
            done.set()

    time.sleep(delay)
    req = GenRequest(prompt_ids, params, cb)
    engine.submit(req)
    return events, done, req


def _text(events):
    return "".join(e.text for e in events if e.kind == "delta")


def test_batched_greedy_matches_hf_generate(tiny):
    model, tok = tiny
    n = 12
    refs = []
    for p in PROMPTS:
        ids = tok(p, return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=n, do_sample=False, min_new_tokens=n)
        refs.append(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
    # max_batch 3 < 5 prompts, staggered arrival: rows join and leave a running batch
    engine = BatchingEngine(model, tok, max_batch=3).start()
    try:
        runs = [_collect(engine, tok(p).input_ids, SamplingParams(temperature=0, repetition_penalty=1.0,
                                                                   max_tokens=n), delay=0.02 * i)
                for i, p in enumerate(PROMPTS)]
        for events, done, _ in runs:
            assert done.wait(60)
        for (events, _, _), ref, p in zip(runs, refs, PROMPTS):
            assert events[-1].kind == "done"
            assert _text(events) == ref, p
            assert events[-1].completion_tokens == n
        assert engine.stats["decode_steps_total"] < n * len(PROMPTS)  # rows shared forwards
    finally:
        engine.stop()


def test_seeded_sampling_is_reproducible_and_seeds_differ(tiny):
    model, tok = tiny
    engine = BatchingEngine(model, tok, max_batch=4).start()
    try:
        ids = tok("Fever and cough for three days").input_ids
        outs = []
        for seed in (7, 7, 8):
            params = SamplingParams(temperature=1.0, top_p=0.95, top_k=0, max_tokens=16, seed=seed)
            events, done, _ = _collect(engine, ids, params)
            assert done.wait(60)
            outs.append(_text(events))
        assert outs[0] == outs[1]
        assert outs[0] != outs[2]
    finally:
        engine.stop()


def test_stop_string_truncates_output(tiny):
    model, tok = tiny
    engine = BatchingEngine(model, tok).start()
    try:
        ids = tok("Hello there, how are").input_ids   # greedy continuation repeats " are"
        full_events, done, _ = _collect(engine, ids, SamplingParams(temperature=0, repetition_penalty=1.0,
                                                                    max_tokens=10))
        assert done.wait(60)
        full = _text(full_events)
        stop = full[3:6]
        events, done, _ = _collect(engine, ids, SamplingParams(temperature=0, repetition_penalty=1.0,
                                                               max_tokens=10, stop=[stop]))
        assert done.wait(60)
        assert _text(events) == full[:full.find(stop)]
        assert events[-1].finish_reason == "stop"
    finally:
        engine.stop()


def test_cancel_frees_the_row_and_queue_bound(tiny):
    model, tok = tiny
    engine = BatchingEngine(model, tok, max_batch=1, max_queue=1).start()
    try:
        ids = tok("Hi").input_ids
        events, done, req = _collect(engine, ids, SamplingParams(max_tokens=2000, temperature=0))
        while engine.active == 0:
            time.sleep(0.01)
        _collect(engine, ids, SamplingParams(max_tokens=1))       # waits: batch of 1 is busy
        with pytest.raises(QueueFull):
            _collect(engine, ids, SamplingParams(max_tokens=1))
        req.cancelled.set()
        assert done.wait(30)
        assert events[-1].finish_reason == "cancelled"
        assert events[-1].completion_tokens < 2000
    finally:
        engine.stop()


def test_bf16_engine_runs(tiny_model_dir):
    from medllm.models import load_causal_lm

    model, tok = load_causal_lm(tiny_model_dir, dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    engine = BatchingEngine(model, tok).start()
    try:
        runs = [_collect(engine, tok(p).input_ids, SamplingParams(max_tokens=6, seed=1)) for p in PROMPTS[:3]]
        for events, done, _ in runs:
            assert done.wait(60)
            assert events[-1].kind == "done" and events[-1].completion_tokens > 0
    finally:
        engine.stop()


def test_top_k_top_p_sampler_matches_hf_warpers():
    """Our k-best sampler draws from the same distribution as HF's TopK+TopP warpers."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from medllm.serve.sampling import RowSampler

    torch.manual_seed(0)
    logits = torch.randn(300)
    params = SamplingParams(temperature=0.7, top_k=20, top_p=0.8, repetition_penalty=1.0, seed=0)
    scores = logits.unsqueeze(0)
    for w in (TemperatureLogitsWarper(0.7), TopKLogitsWarper(20), TopPLogitsWarper(0.8)):
        scores = w(None, scores)
    hf_support = set(torch.nonzero(torch.isfinite(scores[0])).flatten().tolist())
    hf_probs = torch.softmax(scores[0], -1)
    sampler = RowSampler(params)
    draws = [sampler.next_token(logits, torch.tensor([], dtype=torch.long)) for _ in range(3000)]
    assert set(draws) <= hf_support and len(set(draws)) > 1
    top = int(hf_probs.argmax())
    assert abs(draws.count(top) / len(draws) - float(hf_probs[top])) < 0.05


def test_failed_step_reports_error_and_engine_keeps_serving(tiny):
    model, tok = tiny
    engine = BatchingEngine(model, tok).start()
    try:
        ids = tok("Hi").input_ids
        real_forward = engine._forward
        calls = {"n": 0}

        def flaky(*a, **kw):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("boom")
            return real_forward(*a, **kw)

        engine._forward = flaky
        events, done, _ = _collect(engine, ids, SamplingParams(max_tokens=3))
        assert done.wait(30) and events[-1].kind == "error"
        assert engine.stats["errors_total"] == 1
        events, done, _ = _collect(engine, ids, SamplingParams(max_tokens=3))
        assert done.wait(30) and events[-1].kind == "done"
    finally:
        engine.stop()


def test_concurrent_requests_share_decode_steps(tiny):
    """N requests admitted together cost as many decode steps as the longest, not their sum."""
    model, tok = tiny
    lengths = [4, 8, 12, 16]
    engine = BatchingEngine(model, tok, max_batch=8)
    runs = [_collect(engine, tok(p).input_ids, SamplingParams(temperature=0, max_tokens=n, ignore_eos=True))
            for p, n in zip(PROMPTS, lengths)]          # queued before start: one prefill admits all
    engine.start()
    try:
        for events, done, _ in runs:
            assert done.wait(60)
        assert [r[0][-1].completion_tokens for r in runs] == lengths
        # the prefill samples each row's first token; every later token is one shared decode step
        assert engine.stats["decode_steps_total"] == max(lengths) - 1
        assert engine.stats["decode_steps_total"] < sum(lengths) / 2
    finally:
        engine.stop()
