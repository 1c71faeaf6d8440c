"""Turning canonical records into token ids + labels, for every causal-LM stage.

SFT: the conversation is rendered with the model's *own* chat template; the loss covers
assistant tokens only. Which tokens belong to an assistant turn is found from character
spans (render the conversation up to the turn with a generation prompt, then up to the
end of the turn) mapped onto the tokenizer's offsets, so it works for any template that
renders prefixes consistently (ChatML, Llama-3, ...), without needing ``{% generation %}``.

Pretrain: documents are tokenized, joined with EOS and cut into fixed blocks (each starting
with BOS where the tokenizer puts one in front of every text, as Llama's does).
"""
from __future__ import annotations

from typing import Any

IGNORE = -100


class SequenceTooLong(ValueError):
    pass


class EmptyDataset(ValueError):
    pass


def _render(tok, messages: list[dict], *, generation_prompt: bool = False) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_char_spans(tok, messages: list[dict], *, last_turn_only: bool = False) -> tuple[str, list[tuple[int, int]]]:
    """Full rendered text and the [start, end) character spans of the assistant turns
    (content plus the end-of-turn token; the template's trailing newline is left out)."""
    text = _render(tok, messages)
    spans = []
    for i, msg in enumerate(messages):
        if msg.get("role") != "assistant":
            continue
        start = len(_render(tok, messages[:i], generation_prompt=True)) if i else 0
        upto = _render(tok, messages[: i + 1])
        if not text.startswith(upto) or start > len(upto):
            raise ValueError("the chat template does not render conversation prefixes consistently; "
                             "cannot locate assistant turns for loss masking")
        end = len(upto.rstrip())
        spans.append((start, end))
    if last_turn_only:
        spans = spans[-1:]
    return text, spans


def tokenize_conversation(tok, messages: list[dict], *, max_len: int, last_turn_only: bool = False,
                          truncate: bool = True) -> dict[str, Any]:
    """``input_ids`` and ``labels`` (IGNORE outside assistant turns) for one conversation."""
    text, spans = assistant_char_spans(tok, messages, last_turn_only=last_turn_only)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = [IGNORE] * len(ids)
    for t, (a, b) in enumerate(offsets):
        if b > a and any(s <= a < e for s, e in spans):
            labels[t] = ids[t]
    if len(ids) > max_len:
        if not truncate:
            raise SequenceTooLong(f"{len(ids)} tokens > max_seq_len {max_len}")
        ids, labels = ids[:max_len], labels[:max_len]
    return {"input_ids": ids, "labels": labels}


def tokenize_sft(dataset, tok, *, max_len: int, last_turn_only: bool = False, system_prompt: str | None = None,
                 context_len: int | None = None):
    """Map an ``sft`` dataset to input_ids/labels/length; drop rows with nothing to learn."""
    if context_len is not None and max_len > context_len:
        raise SequenceTooLong(f"max_seq_len {max_len} is longer than the model context ({context_len} tokens); "
                              f"lower max_seq_len to at most {context_len}")

    def one(row):
        msgs = list(row["messages"])
        if system_prompt and (not msgs or msgs[0]["role"] != "system"):
            msgs = [{"role": "system", "content": system_prompt}] + msgs
        msgs = [{"role": m["role"], "content": m["content"]} for m in msgs]
        out = tokenize_conversation(tok, msgs, max_len=max_len, last_turn_only=last_turn_only)
        out["length"] = len(out["input_ids"])
        return out

    cols = dataset.column_names
    mapped = dataset.map(one, remove_columns=cols, desc="tokenizing conversations")
    kept = mapped.filter(lambda r: any(x != IGNORE for x in r["labels"][1:]), desc="dropping rows without targets")
    if len(kept) == 0:
        raise EmptyDataset(f"no trainable conversations left after tokenization ({len(dataset)} in, 0 with an "
                           f"assistant turn inside max_seq_len={max_len})")
    return kept


def bos_id(tok) -> int | None:
    """The BOS id when the tokenizer puts one in front of every text it encodes (Llama-2/3,
    Mistral: the model was pretrained with it), else None (SmolLM2, GPT-2, Qwen declare or
    lack a BOS token but never add it). Asked of the tokenizer's own encoding, not of
    flags that its post-processor may not follow."""
    bos = getattr(tok, "bos_token_id", None)
    if bos is None:
        return None
    return bos if tok("a", add_special_tokens=True)["input_ids"][:1] == [bos] else None


def _blocks(stream: list[int], block: int, bos: int | None) -> list[list[int]]:
    """Cut ``stream`` into ``block``-token rows; with a BOS every row starts with it (a row that
    begins at a document start already has the document's own BOS)."""
    rows, i = [], 0
    while True:
        if bos is None or (i < len(stream) and stream[i] == bos):
            piece, i = stream[i:i + block], i + block
        else:
            piece, i = [bos] + stream[i:i + block - 1], i + block - 1
        if len(piece) < block:
            return rows
        rows.append(piece)


def pack_text(dataset, tok, *, block: int, context_len: int | None = None):
    """Tokenize ``text`` records, put EOS between documents and cut into ``block``-token rows.
    Where the tokenizer expects a BOS, each document starts with it and so does each row."""
    from datasets import Dataset

    if context_len is not None and block > context_len:
        raise SequenceTooLong(f"max_seq_len {block} is longer than the model context ({context_len} tokens)")
    eos, bos = tok.eos_token_id, bos_id(tok)
    stream: list[int] = []
    for row in dataset:
        text = row["text"]
        if text and text.strip():
            stream.extend(([bos] if bos is not None else []) + tok(text, add_special_tokens=False)["input_ids"])
            stream.append(eos)
    rows = _blocks(stream, block, bos)
    if not rows:
        if len(stream) < 2:
            raise EmptyDataset(f"no text to pretrain on ({len(dataset)} records, {len(stream)} tokens)")
        rows = [stream]  # less than one block: train on what there is
    return Dataset.from_dict({"input_ids": rows, "labels": rows, "length": [len(r) for r in rows]})


def text_rows(dataset, tok, *, max_len: int, context_len: int | None = None):
    """One row per document (truncated to ``max_len``, EOS appended, BOS first where the
    tokenizer expects one): pretraining without packing."""
    from datasets import Dataset

    if context_len is not None and max_len > context_len:
        raise SequenceTooLong(f"max_seq_len {max_len} is longer than the model context ({context_len} tokens)")
    bos = bos_id(tok)
    head = [bos] if bos is not None else []
    rows = []
    for row in dataset:
        if row["text"] and row["text"].strip():
            body = tok(row["text"], add_special_tokens=False)["input_ids"][: max_len - 1 - len(head)]
            rows.append(head + body + [tok.eos_token_id])
    if not rows:
        raise EmptyDataset(f"no text to pretrain on ({len(dataset)} records, all empty)")
    return Dataset.from_dict({"input_ids": rows, "labels": rows, "length": [len(r) for r in rows]})
