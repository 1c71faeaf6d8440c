"""Pairwise comparison (CUMed-LLaMA style): two systems answer the same questions, a judge
picks the better answer on 9 abilities grouped in 3 dimensions; each pair is judged twice
with the answers' positions swapped, and a verdict stands only when both orders agree
(otherwise it is a draw), which cancels the judge's position bias.

Questions file: JSONL with a ``question`` field (or ``prompt``), one per line, or plain text,
one question per line.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from medllm.eval.loaders import TaskDataError
from medllm.io import atomic_write_json, atomic_write_text

DIMENSIONS = {
    "relevance": ["comprehensiveness", "relevance", "logical structure"],
    "expertise": ["safety", "professionalism", "ethics"],
    "experience": ["clarity", "efficiency", "tone and empathy"],
}
ABILITIES = [a for group in DIMENSIONS.values() for a in group]

JUDGE_PROMPT = """You are an expert physician comparing two answers to a patient's question.

Question: {question}

[Answer 1]
{first}

[Answer 2]
{second}

For each ability below write one line "ability: 1", "ability: 2" or "ability: tie" for the better answer.
Abilities: {abilities}"""


def read_questions(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise TaskDataError(f"{path}: file not found (pairwise questions)")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskDataError(f"{path}:{i}: invalid JSON ({exc.msg})") from None
            q = rec.get("question", rec.get("prompt")) if isinstance(rec, dict) else None
            if not isinstance(q, str) or not q.strip():
                raise TaskDataError(f"{path}:{i}: field 'question': missing or empty")
            out.append(q)
        else:
            out.append(line.strip())
    if not out:
        raise TaskDataError(f"{path}: no questions")
    return out


def parse_verdicts(text: str) -> dict[str, int | None]:
    """ability -> 1, 2, 0 (tie) or None (not stated)."""
    out: dict[str, int | None] = {a: None for a in ABILITIES}
    for line in text.lower().splitlines():
        m = re.match(r"^\W*([a-z ]+?)\s*[:=-]\s*\**\s*(answer\s*)?(1|2|tie|draw|equal)\b", line.strip())
        if not m:
            continue
        name = m.group(1).strip()
        for a in ABILITIES:
            if name == a or (a == "tone and empathy" and name in ("tone", "empathy", "tone/empathy")):
                v = m.group(3)
                out[a] = 1 if v == "1" else 2 if v == "2" else 0
    return out


def combine(ab: dict[str, int | None], ba: dict[str, int | None]) -> dict[str, str]:
    """Verdicts from (A shown first) and (B shown first) -> 'win'/'draw'/'loss' for A, or
    'unparsed' when either order gave no verdict for that ability: a judge that did not answer
    is not a judge that called it even, so those are counted apart, never as draws."""
    res = {}
    for a in ABILITIES:
        first = {1: "win", 2: "loss", 0: "draw"}.get(ab[a])
        second = {1: "loss", 2: "win", 0: "draw"}.get(ba[a])
        if first is None or second is None:
            res[a] = "unparsed"
        else:
            res[a] = first if first == second else "draw"  # disagreement across orders = position bias
    for dim, abil in DIMENSIONS.items():
        if any(res[x] == "unparsed" for x in abil):
            res[dim] = "unparsed"
            continue
        score = sum({"win": 1, "loss": -1, "draw": 0}[res[x]] for x in abil)
        res[dim] = "win" if score > 0 else "loss" if score < 0 else "draw"
    return res


JUDGE_TOKENS = 160   # nine "ability: verdict" lines
JUDGE_RETRIES = 2


def _stated(text: str) -> int:
    return sum(v is not None for v in parse_verdicts(text).values())


def judge_all(jb, prompts: list, retries: int = JUDGE_RETRIES) -> tuple[list[str], int]:
    """Judge outputs, asking again (up to ``retries`` times) for any that leave an ability
    without a verdict; returns (outputs, number of retried prompts)."""
    outs = jb.generate(prompts, JUDGE_TOKENS)
    retried = 0
    for _ in range(retries):
        todo = [i for i, o in enumerate(outs) if _stated(o) < len(ABILITIES)]
        if not todo:
            break
        retried += len(todo)
        for i, o in zip(todo, jb.generate([prompts[i] for i in todo], JUDGE_TOKENS)):
            if _stated(o) > _stated(outs[i]):  # keep the more complete answer
                outs[i] = o
    return outs, retried


def pairwise(model_a, model_b, questions, judge, out_dir, *, max_new_tokens: int = 256, batch_size: int = 4,
             label_a: str | None = None, label_b: str | None = None, answers_a: list[str] | None = None,
             answers_b: list[str] | None = None) -> dict:
    """``model_a``/``model_b``/``judge``: model specs, endpoint URLs or backend objects.
    ``questions``: a file path or a list of strings. Writes pairwise.json/.md/.html."""
    from medllm.eval.backends import make_backend

    qs = read_questions(questions) if isinstance(questions, (str, Path)) else list(questions)

    def backend(x):
        return make_backend(x, batch_size=batch_size) if isinstance(x, (str, Path)) else x

    chats = [[{"role": "user", "content": q}] for q in qs]
    if answers_a is None:
        answers_a = backend(model_a).generate(chats, max_new_tokens)
    if answers_b is None:
        answers_b = backend(model_b).generate(chats, max_new_tokens)
    jb = backend(judge)
    abil = ", ".join(ABILITIES)
    prompts = []
    for q, a, b in zip(qs, answers_a, answers_b):
        prompts.append([{"role": "user", "content": JUDGE_PROMPT.format(question=q, first=a, second=b, abilities=abil)}])
        prompts.append([{"role": "user", "content": JUDGE_PROMPT.format(question=q, first=b, second=a, abilities=abil)}])
    verdicts, retried = judge_all(jb, prompts)
    rows, table = [], {k: {"win": 0, "draw": 0, "loss": 0, "unparsed": 0} for k in [*ABILITIES, *DIMENSIONS]}
    for i, q in enumerate(qs):
        ab, ba = parse_verdicts(verdicts[2 * i]), parse_verdicts(verdicts[2 * i + 1])
        res = combine(ab, ba)
        for k, v in res.items():
            table[k][v] += 1
        rows.append({"question": q, "answer_a": answers_a[i], "answer_b": answers_b[i],
                     "judge_ab": verdicts[2 * i], "judge_ba": verdicts[2 * i + 1], "result": res})
    la = label_a or (str(model_a) if isinstance(model_a, (str, Path)) else "A")
    lb = label_b or (str(model_b) if isinstance(model_b, (str, Path)) else "B")
    unparsed = sum(table[a]["unparsed"] for a in ABILITIES)
    out = {"a": la, "b": lb, "n": len(qs), "table": table, "dimensions": DIMENSIONS,
           "judge": getattr(jb, "name", None) or type(jb).__name__,
           "unparsed": unparsed, "retried_prompts": retried,
           "note": "counts are A's win/draw/loss against B; each pair judged in both orders; 'unparsed' = the "
                   "judge gave no readable verdict in one order even after retries (not counted as a draw)"}
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / "pairwise.json", out)
    atomic_write_text(out_dir / "pairwise_examples.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    _write_report(out, out_dir)
    return out


def _write_report(res: dict, out_dir: Path) -> None:
    from medllm.eval.report import _html_page, _png

    keys = [*DIMENSIONS, *ABILITIES]
    md = [f"# Pairwise: {res['a']} vs {res['b']} ({res['n']} questions, position-swapped)", "",
          f"judge {res.get('judge')}; {res.get('unparsed', 0)} ability verdicts unparseable after "
          f"{JUDGE_RETRIES} retries (column 'unparsed', not draws)", "",
          "| ability | win | draw | loss | unparsed |", "|---|---|---|---|---|"]
    md += [f"| {k} | {res['table'][k]['win']} | {res['table'][k]['draw']} | {res['table'][k]['loss']} "
           f"| {res['table'][k]['unparsed']} |" for k in keys]
    text = "\n".join(md) + "\n"
    atomic_write_text(out_dir / "pairwise.md", text)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    left = [0.0] * len(keys)
    for outcome, color in (("win", "#2a9d8f"), ("draw", "#bbbbbb"), ("loss", "#e76f51"), ("unparsed", "#f4d35e")):
        vals = [res["table"][k][outcome] / max(1, res["n"]) for k in keys]
        ax.barh(keys, vals, left=left, color=color, label=outcome)
        left = [a + b for a, b in zip(left, vals)]
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title(f"{res['a']} vs {res['b']}", fontsize=10)
    atomic_write_text(out_dir / "pairwise.html", _html_page("medllm pairwise", text, [("win/draw/loss", _png(fig))]))
