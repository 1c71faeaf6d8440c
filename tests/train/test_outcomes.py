"""Training stages do what they are for, measured independently of the stage's own report:
the reward model ranks chosen above rejected, DPO widens the chosen-minus-rejected margin,
rejection sampling keeps what the trained reward model scores best, and a tiny recipe makes
an evaluation metric better. Each would fail if its stage trained nothing useful."""
from __future__ import annotations

import json

import pytest

from medllm.config.train import DPOStage, RejectionSamplingStage, RewardStage
from medllm.train import run_stage

pytestmark = pytest.mark.slow

GOOD = ["Please see a doctor if the fever lasts more than three days.",
        "Drink fluids, rest, and call your clinic if it gets worse.",
        "Seek urgent care if you have trouble breathing."]
BAD = ["no no no no no", "xq zz xq zz", "bad bad bad bad"]


def _pairs(n: int, offset: int = 0) -> list[dict]:
    """Separable by construction: fluent advice vs. repeated junk, varied across pairs."""
    return [{"prompt": [{"role": "user", "content": f"Question {i + offset}: is my symptom serious?"}],
             "chosen": [{"role": "assistant", "content": GOOD[i % len(GOOD)]}],
             "rejected": [{"role": "assistant", "content": BAD[(i // len(GOOD)) % len(BAD)]}]}
            for i in range(n)]


@pytest.fixture(scope="module")
def trained_reward(tmp_path_factory, tiny_model_dir):
    import torch
    from datasets import Dataset

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("rm")
    st = RewardStage(data=["p"], val_fraction=0.25, max_steps=30, batch_size=8, lr=2e-3, log_every=10,
                     adapter={"method": "full"}, warmup_ratio=0.0, bf16="false")
    # seed 0: the freshly initialised score head ranks these pairs mostly wrong (checked below)
    return run_stage("rm", st, base_model=tiny_model_dir, datasets={"p": Dataset.from_list(_pairs(32))},
                     out_dir=out, seed=RM_SEED)


RM_SEED = 0


def _rm_accuracy(rm, tok, pairs) -> float:
    from medllm.train.reward import score_conversations

    chosen = score_conversations(rm, tok, [p["prompt"] + p["chosen"] for p in pairs])
    rejected = score_conversations(rm, tok, [p["prompt"] + p["rejected"] for p in pairs])
    return sum(c > r for c, r in zip(chosen, rejected)) / len(pairs)


def test_reward_model_separates_toy_pairs(trained_reward, tiny_model_dir):
    import torch

    from medllm.train.reward import load_reward_model

    m = trained_reward.metrics
    assert m["accuracy_on"] == "validation" and m["pairwise_accuracy"] >= 0.9
    fresh = _pairs(9, offset=1000)                    # prompts the model never saw
    torch.manual_seed(RM_SEED)                        # the same random head the stage started from
    assert _rm_accuracy(*load_reward_model(tiny_model_dir), fresh) < 0.9   # so training made the difference
    assert _rm_accuracy(*load_reward_model(trained_reward.model_dir), fresh) >= 0.9


def _completion_logp(model, tok, prompt: list[dict], answer: list[dict]) -> float:
    """log p(answer | prompt) from a plain forward: the answer tokens are what the full chat
    rendering adds after the rendering of the prompt with its generation header."""
    import torch

    head = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(prompt + answer, tokenize=False)
    assert full.startswith(head)
    h = tok(head, add_special_tokens=False)["input_ids"]
    ids = tok(full, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits[0, :-1].float().log_softmax(-1)
    tgt = torch.tensor(ids[1:])
    return float(logp.gather(1, tgt[:, None])[len(h) - 1:].sum())


def _margins(model_dir, pairs) -> list[float]:
    from medllm.models import load_causal_lm

    model, tok = load_causal_lm(model_dir, dtype="float32")
    return [_completion_logp(model, tok, p["prompt"], p["chosen"]) - _completion_logp(model, tok, p["prompt"],
                                                                                      p["rejected"])
            for p in pairs]


def test_dpo_raises_chosen_minus_rejected_margin(tmp_path, tiny_model_dir):
    from datasets import Dataset

    pairs = _pairs(16)
    before = _margins(tiny_model_dir, pairs)
    st = DPOStage(data=["p"], max_steps=2, batch_size=8, lr=3e-3, beta=0.1, log_every=1, warmup_ratio=0.0,
                  max_seq_len=64, adapter={"method": "full"}, bf16="false")
    res = run_stage("dpo", st, base_model=tiny_model_dir, datasets={"p": Dataset.from_list(pairs)},
                    out_dir=tmp_path)
    after = _margins(res.model_dir, pairs)
    # the DPO log-ratio margin (policy vs. the start model) = after - before, per pair
    gains = [a - b for a, b in zip(after, before)]
    assert sum(gains) / len(gains) > 1.0, gains
    assert all(g > 0 for g in gains), gains


def test_rejection_sampling_scores_with_trained_reward_model(tmp_path, tiny_model_dir, trained_reward):
    from datasets import Dataset

    from medllm.train.reward import load_reward_model, score_conversations

    prompts = Dataset.from_list([{"prompt": [{"role": "user", "content": f"Is symptom {i} serious?"}]}
                                 for i in range(3)])
    st = RejectionSamplingStage(data=["d"], k=4, top_n=1, max_new_tokens=8, scorer="reward", max_steps=2,
                                batch_size=2, log_every=1, lr=1e-3, bf16="false")
    run_stage("rs", st, base_model=tiny_model_dir, datasets={"d": prompts}, out_dir=tmp_path,
              reward_model=trained_reward.model_dir)
    sampled = [json.loads(x) for x in (tmp_path / "sampled.jsonl").read_text().splitlines()]
    selected = [json.loads(x) for x in (tmp_path / "selected.jsonl").read_text().splitlines()]
    assert len(sampled) == 3 * 4
    # every recorded score is the trained reward model's score of that (prompt, response)
    rm, tok = load_reward_model(trained_reward.model_dir)
    again = score_conversations(rm, tok, [s["prompt"] + [{"role": "assistant", "content": s["response"]}]
                                          for s in sampled])
    assert [s["score"] for s in sampled] == pytest.approx(again, abs=1e-4)
    assert len({round(s["score"], 4) for s in sampled}) > 1       # a real scorer, not a constant
    for s in selected:                                            # kept = the reward model's best
        same = [x["score"] for x in sampled if x["prompt"] == s["messages"][:-1]]
        assert s["score"] == max(same)
        best = next(x for x in sampled if x["prompt"] == s["messages"][:-1] and x["rank"] == 0)
        assert s["messages"][-1]["content"] == best["response"]


def test_tiny_recipe_sft_improves_mcq_generate_accuracy(tmp_path, tiny_model_dir):
    """SFT on a task's own Q/A (rendered with the task's generate prompt) lifts generate-mode
    accuracy scored by evaluate(): the random base answers no letter at all. With 40 steps the
    tiny model learns the answer format and a letter prior, not each item (too far back for
    2 layers), so the bar is one item more than the base, every output a valid letter."""
    from datasets import Dataset

    from medllm.config.eval import EvalTask
    from medllm.config.train import SFTStage
    from medllm.eval import evaluate
    from medllm.eval.spec import load_spec

    items = [{"question": f"Drug for {c}?", "options": {"A": "alpha", "B": "beta", "C": "gamma", "D": "delta"},
              "answer_idx": "ABCD"[i], "answer": ""} for i, c in enumerate(["gout", "asthma", "angina", "migraine"])]
    path = tmp_path / "mcq.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in items))
    g = load_spec("medqa").generate
    rows = [{"messages": [{"role": "system", "content": g.system},
                          {"role": "user", "content": g.prompt.format(
                              question=r["question"], options="\n".join(f"{k}. {v}" for k, v in r["options"].items()))},
                          {"role": "assistant", "content": r["answer_idx"]}]} for r in items]
    tasks = [EvalTask(task="medqa", path=str(path), mode="generate")]
    before = evaluate(tiny_model_dir, tasks, tmp_path / "before", dtype="float32", report=False, max_new_tokens=4)
    st = SFTStage(data=["t"], adapter={"method": "full"}, max_steps=40, batch_size=4, lr=1e-2,
                  lr_scheduler="constant", warmup_ratio=0.0, log_every=10, bf16="false")
    res = run_stage("sft", st, base_model=tiny_model_dir, datasets={"t": Dataset.from_list(rows)},
                    out_dir=tmp_path / "sft")
    after = evaluate(res.model_dir, tasks, tmp_path / "after", dtype="float32", report=False, max_new_tokens=4)
    acc = [r["tasks"]["medqa:generate"]["metrics"]["acc"]["value"] for r in (before, after)]
    assert acc[1] >= acc[0] + 0.25, acc
    preds = [json.loads(x)["pred"] for x in (tmp_path / "after" / "predictions" / "medqa_generate.jsonl")
             .read_text().splitlines()]
    assert all(p in ("A", "B", "C", "D") for p in preds), preds
