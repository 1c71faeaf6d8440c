"""Format detection and conversion of one raw record into canonical records.

Each converter returns ``(records, error)``: a list of canonical dicts (ranked lists expand
into several preference pairs) or an error message saying exactly what is wrong with the row.
Canonical kinds and columns are those of docs/architecture.md.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable

FORMAT_KIND = {
    "alpaca": "sft", "sharegpt": "sft", "openai": "sft", "completion": "sft",
    "preference": "preference", "ranked": "preference", "text": "text", "mcq": "mcq",
}
KINDS = ("text", "sft", "preference", "mcq")
ROLE_ALIASES = {
    "system": "system", "user": "user", "human": "user", "patient": "user", "question": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "chatgpt": "assistant",
    "model": "assistant", "doctor": "assistant", "answer": "assistant",
}
RANKED_KEYS = ("responses", "ranked", "ranking", "answers")
PROMPT_KEYS = ("prompt", "question", "instruction", "query")


class RowError(ValueError):
    pass


# ----------------------------------------------------------------- detection
def detect_format(rec: Any) -> str | None:
    """The format a record looks like, or None. Order matters: preference before chat."""
    if not isinstance(rec, dict):
        return None
    keys = set(rec)
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if keys & set(RANKED_KEYS) and isinstance(next(rec[k] for k in RANKED_KEYS if k in rec), list) \
            and keys & set(PROMPT_KEYS + ("messages", "conversations")):
        return "ranked"
    if "messages" in keys:
        return "openai"
    if "conversations" in keys:
        return "sharegpt"
    if "instruction" in keys and ("output" in keys or "response" in keys):
        return "alpaca"
    if "prompt" in keys and "completion" in keys:
        return "completion"
    if "question" in keys and ("choices" in keys or "options" in keys) and "answer" in keys:
        return "mcq"
    if "text" in keys:
        return "text"
    return None


def describe_keys(rec: Any) -> str:
    if not isinstance(rec, dict):
        return f"a record must be a JSON object, got {type(rec).__name__}"
    return (f"cannot tell the format from fields {sorted(rec)[:8]} (expected e.g. instruction/output, "
            "messages, conversations, prompt/chosen/rejected, prompt/completion, text; "
            "map odd columns with columns=)")


# ----------------------------------------------------------------- helpers
def _text(value: Any, what: str) -> str:
    if value is None:
        raise RowError(f"missing field '{what}'")
    if not isinstance(value, str):
        raise RowError(f"field '{what}' must be text, got {type(value).__name__}")
    if not value.strip():
        raise RowError(f"empty field '{what}'")
    return value


def _need(rec: dict, key: str) -> Any:
    if key not in rec or rec[key] is None:
        raise RowError(f"missing field '{key}'")
    return rec[key]


def _message(m: Any, i: int) -> dict:
    if isinstance(m, dict):
        role = m.get("role", m.get("from"))
        content = m.get("content", m.get("value"))
    else:
        raise RowError(f"turn {i + 1} must be an object with role/content (or from/value)")
    if not isinstance(role, str) or role.lower() not in ROLE_ALIASES:
        raise RowError(f"turn {i + 1} has unknown role {role!r} (use system/user/assistant or human/gpt)")
    if content is None or not isinstance(content, str):
        raise RowError(f"turn {i + 1} ({role}) has no text content")
    return {"role": ROLE_ALIASES[role.lower()], "content": content}


def messages_of(value: Any, what: str = "messages") -> list[dict]:
    if not isinstance(value, list) or not value:
        raise RowError(f"'{what}' must be a non-empty list of turns")
    return [_message(m, i) for i, m in enumerate(value)]


def check_dialogue(msgs: list[dict], *, must_end_with_assistant: bool = True) -> None:
    """Optional system first, then user/assistant strictly alternating, no empty turns."""
    body = msgs[1:] if msgs and msgs[0]["role"] == "system" else msgs
    if any(m["role"] == "system" for m in body):
        raise RowError("wrong role order: a system message may only come first")
    if not body:
        raise RowError("conversation has no user turn")
    if body[0]["role"] != "user":
        raise RowError(f"wrong role order: the conversation must start with a user turn, got '{body[0]['role']}'")
    offset = len(msgs) - len(body)
    for i, (a, b) in enumerate(itertools.pairwise(body)):
        if a["role"] == b["role"]:
            raise RowError(f"non-alternating turns: two '{a['role']}' turns in a row (turns {i + offset + 1} "
                           f"and {i + offset + 2})")
    for i, m in enumerate(msgs):
        if not m["content"].strip():
            raise RowError(f"empty {m['role']} turn (turn {i + 1})")
    if must_end_with_assistant and body[-1]["role"] != "assistant":
        raise RowError("conversation ends with a user turn: there is no answer to train on")


def _prompt_messages(rec: dict) -> list[dict]:
    """The prompt side of a preference/ranked record: a string or a list of turns."""
    for key in ("prompt", "messages", "conversations", "question", "instruction", "query"):
        if key in rec and rec[key] is not None:
            value = rec[key]
            break
    else:
        raise RowError("missing field 'prompt'")
    if isinstance(value, str):
        msgs = [{"role": "user", "content": _text(value, "prompt")}]
        if rec.get("input"):
            msgs[0]["content"] += "\n\n" + str(rec["input"])
        if isinstance(rec.get("system"), str) and rec["system"].strip():
            msgs.insert(0, {"role": "system", "content": rec["system"]})
        return msgs
    msgs = messages_of(value, "prompt")
    check_dialogue(msgs, must_end_with_assistant=False)
    if msgs[-1]["role"] != "user":
        raise RowError("the prompt must end with a user turn")
    return msgs


def _answer(value: Any, what: str) -> list[dict]:
    """chosen/rejected as a string, a message, or a message list ending in the assistant answer."""
    if isinstance(value, str):
        content = value
    elif isinstance(value, dict):
        content = _message(value, 0)["content"]
    elif isinstance(value, list) and value:
        last = _message(value[-1], len(value) - 1)
        if last["role"] != "assistant":
            raise RowError(f"'{what}' must end with an assistant turn")
        content = last["content"]
    else:
        raise RowError(f"missing field '{what}'" if value is None else f"'{what}' must be text or a message")
    if not content.strip():
        raise RowError(f"empty field '{what}'")
    return [{"role": "assistant", "content": content}]


# ----------------------------------------------------------------- converters
def _alpaca(rec: dict, **_) -> list[dict]:
    instruction = _text(rec.get("instruction"), "instruction")
    output = _text(rec.get("output", rec.get("response")), "output")
    user = instruction + ("\n\n" + rec["input"] if isinstance(rec.get("input"), str) and rec["input"].strip() else "")
    msgs: list[dict] = []
    if isinstance(rec.get("system"), str) and rec["system"].strip():
        msgs.append({"role": "system", "content": rec["system"]})
    for j, pair in enumerate(rec.get("history") or []):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise RowError(f"history item {j + 1} must be a [question, answer] pair")
        msgs += [{"role": "user", "content": _text(pair[0], f"history[{j}][0]")},
                 {"role": "assistant", "content": _text(pair[1], f"history[{j}][1]")}]
    msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    return [{"messages": msgs}]


def _chat(key: str) -> Callable[..., list[dict]]:
    def convert(rec: dict, **_) -> list[dict]:
        msgs = messages_of(_need(rec, key), key)
        if isinstance(rec.get("system"), str) and rec["system"].strip() and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": rec["system"]})
        check_dialogue(msgs)
        return [{"messages": msgs}]
    return convert


def _completion(rec: dict, **_) -> list[dict]:
    return [{"messages": [{"role": "user", "content": _text(rec.get("prompt"), "prompt")},
                          {"role": "assistant", "content": _text(rec.get("completion"), "completion")}]}]


def _text_rec(rec: dict, **_) -> list[dict]:
    return [{"text": _text(rec.get("text"), "text")}]


def _preference(rec: dict, **_) -> list[dict]:
    prompt = _prompt_messages(rec)
    chosen = _answer(rec.get("chosen"), "chosen")
    rejected = _answer(rec.get("rejected"), "rejected")
    if chosen[0]["content"].strip() == rejected[0]["content"].strip():
        raise RowError("'chosen' and 'rejected' are identical")
    return [{"prompt": prompt, "chosen": chosen, "rejected": rejected}]


def _ranked(rec: dict, *, ranked_pairs: str = "adjacent", **_) -> list[dict]:
    """A list ordered best -> worst becomes preference pairs: neighbours (adjacent) or every i<j (all)."""
    prompt = _prompt_messages(rec)
    key = next(k for k in RANKED_KEYS if k in rec)
    raw = rec[key]
    if not isinstance(raw, list) or len(raw) < 2:
        raise RowError(f"'{key}' must list at least two responses, best first")
    answers = [_answer(r.get("text", r.get("content", r.get("value"))) if isinstance(r, dict) and "role" not in r
                       and "from" not in r else r, f"{key}[{i}]")[0]["content"] for i, r in enumerate(raw)]
    idx = itertools.pairwise(range(len(answers))) if ranked_pairs == "adjacent" \
        else itertools.combinations(range(len(answers)), 2)
    return [{"prompt": prompt, "chosen": [{"role": "assistant", "content": answers[i]}],
             "rejected": [{"role": "assistant", "content": answers[j]}]}
            for i, j in idx if answers[i].strip() != answers[j].strip()]


def _mcq(rec: dict, **_) -> list[dict]:
    question = _text(rec.get("question"), "question")
    choices = rec.get("choices", rec.get("options"))
    if isinstance(choices, dict):
        letters = sorted(choices)
        choices = [choices[k] for k in letters]
    else:
        letters = None
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
        raise RowError("'choices' must list at least two non-empty options")
    answer = rec.get("answer")
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer.strip())
    if isinstance(answer, str):
        a = answer.strip()
        if letters and a in letters:
            answer = letters.index(a)
        elif len(a) == 1 and a.upper() in "ABCDEFGH":
            answer = "ABCDEFGH".index(a.upper())
        elif a in choices:
            answer = choices.index(a)
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
        raise RowError(f"'answer' must be a 0-based index, a letter or one of the choices, got {rec.get('answer')!r}")
    return [{"id": str(rec.get("id", "")), "question": question, "choices": [str(c) for c in choices],
             "answer": answer, "topic": str(rec.get("topic", rec.get("subject", "")) or "")}]


CONVERTERS: dict[str, Callable[..., list[dict]]] = {
    "alpaca": _alpaca, "sharegpt": _chat("conversations"), "openai": _chat("messages"),
    "completion": _completion, "text": _text_rec, "preference": _preference, "ranked": _ranked, "mcq": _mcq,
}


def convert(rec: Any, fmt: str, **options: Any) -> list[dict]:
    if not isinstance(rec, dict):
        raise RowError(f"a record must be a JSON object, got {type(rec).__name__}")
    return CONVERTERS[fmt](rec, **options)


def sample_text(rec: dict) -> str:
    """All the text of a canonical record (dedup, filters, decontamination, token counts)."""
    if "text" in rec:
        return rec["text"]
    if "messages" in rec:
        return "\n".join(m["content"] for m in rec["messages"])
    if "chosen" in rec:
        return "\n".join(m["content"] for m in rec["prompt"] + rec["chosen"] + rec["rejected"])
    if "question" in rec:
        return rec["question"] + "\n" + "\n".join(rec["choices"])
    return ""


def prompt_response(rec: dict) -> tuple[str, str]:
    """(prompt text, response text) for length statistics."""
    if "messages" in rec:
        msgs = rec["messages"]
        return ("\n".join(m["content"] for m in msgs if m["role"] != "assistant"),
                "\n".join(m["content"] for m in msgs if m["role"] == "assistant"))
    if "chosen" in rec:
        return "\n".join(m["content"] for m in rec["prompt"]), rec["chosen"][0]["content"]
    if "question" in rec:
        return rec["question"], rec["choices"][rec["answer"]]
    return "", rec.get("text", "")
