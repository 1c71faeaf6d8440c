"""Stage ``rejection_sampling`` (CUMed-LLaMA's recipe): for every prompt sample ``k``
answers from the current policy, score them, keep the ``top_n`` best, fine-tune on those.

Scorers: ``reward`` (the recipe's reward stage, passed in as ``reward_model``), a reward
model folder, or ``rule`` (ROUGE-L against the reference answer when the record has one,
otherwise a penalty for unfinished or repetitive answers). Everything sampled goes to
``sampled.jsonl`` with its score, the kept answers to ``selected.jsonl``."""
from __future__ import annotations

import json
from pathlib import Path

from medllm.train.stage import StageContext


def prompts_from(ds) -> list[dict]:
    """[{prompt: messages up to the last user turn, reference: answer or None}]."""
    out = []
    for r in ds:
        if "messages" in r:
            msgs = [{"role": m["role"], "content": m["content"]} for m in r["messages"]]
            last_user = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=None)
            if last_user is None:
                continue
            ref = next((m["content"] for m in msgs[last_user + 1:] if m["role"] == "assistant"), None)
            out.append({"prompt": msgs[:last_user + 1], "reference": ref})
        elif "prompt" in r and isinstance(r["prompt"], list):
            out.append({"prompt": list(r["prompt"]), "reference": None})
        elif "text" in r:
            out.append({"prompt": [{"role": "user", "content": r["text"]}], "reference": None})
    return out


def sample(model, tok, prompts: list[dict], cfg, *, batch_size: int = 4) -> list[list[dict]]:
    """k sampled answers per prompt: [{text, finished}]. Generation stops on every end-of-turn
    id (Llama-3-Instruct ends turns with ``<|eot_id|>``, not its eos); an answer is finished
    when one of them appeared."""
    import torch

    from medllm.models import model_device, stop_token_ids
    from medllm.progress import progress

    tok.padding_side = "left"  # generation continues from the right edge
    results: list[list[dict]] = []
    model.eval()
    stops = stop_token_ids(model, tok)
    dev = model_device(model)
    for i in progress(range(0, len(prompts), batch_size), desc="sampling", unit="batch"):
        chunk = prompts[i:i + batch_size]
        texts = [tok.apply_chat_template(p["prompt"], tokenize=False, add_generation_prompt=True) for p in chunk]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(dev)
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=_bf16(cfg)):
            out = model.generate(**enc, do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p,
                                 max_new_tokens=cfg.max_new_tokens, num_return_sequences=cfg.k,
                                 pad_token_id=tok.pad_token_id, eos_token_id=stops)
        new = out[:, enc["input_ids"].shape[1]:]
        for j in range(len(chunk)):
            answers = []
            for seq in new[j * cfg.k:(j + 1) * cfg.k]:
                ids = seq.tolist()
                end = next((t for t, x in enumerate(ids) if x in stops), None)
                answers.append({"text": tok.decode(ids[:end], skip_special_tokens=True).strip(),
                                "finished": end is not None})
            results.append(answers)
    tok.padding_side = "right"
    return results


def _bf16(cfg) -> bool:
    from medllm.train.stage import use_bf16

    return use_bf16(cfg)


def rule_score(answer: dict, reference: str | None) -> float:
    """ROUGE-L F1 against the reference if any; minus penalties for unfinished/repetitive text."""
    text = answer["text"]
    words = text.split()
    if not words:
        return -1.0
    score = 0.0
    if reference:
        from rouge_score import rouge_scorer

        score = rouge_scorer.RougeScorer(["rougeL"]).score(reference, text)["rougeL"].fmeasure
    repetition = 1 - len(set(words)) / len(words)
    return score - 0.5 * repetition - (0.0 if answer["finished"] else 0.2)


def score_all(ctx: StageContext, prompts, answers) -> list[list[float]]:
    scorer = ctx.cfg.scorer
    if scorer == "rule":
        return [[rule_score(a, p["reference"]) for a in ans] for p, ans in zip(prompts, answers)]
    path = ctx.reward_model if scorer == "reward" else Path(scorer)
    if path is None:
        raise ValueError(f"stage '{ctx.name}': scorer 'reward' needs the reward stage's model "
                         "(run_stage(..., reward_model=PATH)), a reward-model folder, or scorer: rule")
    from medllm.train.reward import load_reward_model, score_conversations

    from medllm.train.base import model_config

    # on this rank's accelerator, bf16 where available; prompts truncated from the left
    rm, rtok = load_reward_model(path, dtype=model_config(ctx).dtype)
    convs = [p["prompt"] + [{"role": "assistant", "content": a["text"]}] for p, ans in zip(prompts, answers) for a in ans]
    flat = score_conversations(rm, rtok, convs, max_len=ctx.cfg.max_seq_len)
    k = ctx.cfg.k
    return [flat[i * k:(i + 1) * k] for i in range(len(prompts))]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    from medllm.io import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def train(ctx: StageContext) -> dict:
    from datasets import Dataset

    from medllm.train.causal import load_policy, train_rows
    from medllm.train.data import resolve_stage_data
    from medllm.train.tokenize import EmptyDataset, tokenize_sft

    cfg = ctx.cfg
    ds = resolve_stage_data(cfg.data, ctx.datasets, stage=ctx.name)
    if cfg.max_samples:
        ds = ds.select(range(min(cfg.max_samples, len(ds))))
    prompts = prompts_from(ds)
    if not prompts:
        raise EmptyDataset(f"stage '{ctx.name}': no prompts found in its data")
    model, tok, context = load_policy(ctx)
    if getattr(model, "hf_device_map", None) is None:
        from medllm.models.hardware import local_device

        model.to(local_device())  # sample on this rank's accelerator; the trainer keeps it there
    answers = sample(model, tok, prompts, cfg)
    scores = score_all(ctx, prompts, answers)
    sampled, selected = [], []
    for p, ans, sc in zip(prompts, answers, scores):
        ranked = sorted(zip(sc, ans), key=lambda x: -x[0])
        for rank, (s, a) in enumerate(ranked):
            sampled.append({"prompt": p["prompt"], "response": a["text"], "score": s, "rank": rank,
                            "finished": a["finished"]})
        for s, a in ranked[:cfg.top_n]:
            if a["text"]:
                selected.append({"messages": p["prompt"] + [{"role": "assistant", "content": a["text"]}],
                                 "score": s})
    _write_jsonl(ctx.stage_dir / "sampled.jsonl", sampled)
    _write_jsonl(ctx.stage_dir / "selected.jsonl", selected)
    if not selected:
        raise EmptyDataset(f"stage '{ctx.name}': every sampled answer was empty; nothing to fine-tune on")
    rows = tokenize_sft(Dataset.from_list([{"messages": s["messages"]} for s in selected]), tok,
                        max_len=cfg.max_seq_len, context_len=context)
    model.train()
    metrics = train_rows(ctx, model, tok, rows, None, packed=False)
    metrics.update(prompts=len(prompts), sampled=len(sampled), selected=len(selected),
                   mean_selected_score=sum(s["score"] for s in selected) / len(selected))
    from medllm.io import atomic_write_json

    if (ctx.stage_dir / "metrics.json").exists():
        atomic_write_json(ctx.stage_dir / "metrics.json", metrics)
    return metrics
