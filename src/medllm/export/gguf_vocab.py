"""Byte-level BPE tokenizer metadata for GGUF (what llama.cpp needs to tokenize
exactly like the HF tokenizer): token strings, token types, merges, the pre-tokenizer
name, special token ids and the chat template. Read from the model folder's
``tokenizer.json`` so nothing is re-derived from a slow tokenizer."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from medllm.export.resolve import ExportError


@dataclass
class GGUFVocab:
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str
    special_ids: dict[str, int] = field(default_factory=dict)   # bos/eos/pad/unk -> id
    add_bos: bool = False
    add_eos: bool = False
    chat_template: str | None = None


def _pre_tokenizer_name(tj: dict, source: Path) -> str:
    """Name of llama.cpp's pre-tokenizer that splits text the same way as tokenizer.json.

    Recognised by structure: plain byte-level (GPT-2 regex); individual digits + byte-level
    (SmolLM/StarCoder family); the Llama-3 split regex (digits in groups of 1-3)."""
    pt = tj.get("pre_tokenizer") or {}
    parts = pt.get("pretokenizers", []) if pt.get("type") == "Sequence" else [pt]
    types = [p.get("type") for p in parts]
    if types == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"   # llama.cpp's name for the GPT-2 split regex
    if types == ["Digits", "ByteLevel"] and parts[0].get("individual_digits"):
        return "smollm"
    if types and types[0] == "Split":
        regex = (parts[0].get("pattern") or {}).get("Regex", "")
        if "\\p{N}{1,3}" in regex:
            return "llama-bpe"
    raise ExportError(f"{source}: pre-tokenizer {types or 'none'} is not one medllm can describe to llama.cpp "
                      "(supported: GPT-2 byte-level, SmolLM digits+byte-level, Llama-3 BPE)")


def _special_id(tok, attr: str) -> int | None:
    value = getattr(tok, f"{attr}_token_id", None)
    return int(value) if value is not None else None


def read_vocab(model_dir: str | Path, vocab_size: int) -> GGUFVocab:
    """Collect tokenizer metadata; ``vocab_size`` (embedding rows) pads the token list
    so llama.cpp's vocabulary and the weight matrix agree."""
    from medllm.models.loading import load_tokenizer

    model_dir = Path(model_dir)
    tj_file = model_dir / "tokenizer.json"
    if not tj_file.is_file():
        raise ExportError(f"{model_dir}: no tokenizer.json (GGUF export needs a fast BPE tokenizer)")
    tj = json.loads(tj_file.read_text(encoding="utf-8"))
    model = tj.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise ExportError(f"{tj_file}: tokenizer model {model.get('type')!r}"
                          f"{' with byte_fallback (SentencePiece style)' if model.get('byte_fallback') else ''} "
                          "is not supported; medllm exports byte-level BPE tokenizers (SmolLM2, Llama-3)")
    pre = _pre_tokenizer_name(tj, tj_file)

    by_id: dict[int, str] = {int(i): t for t, i in model["vocab"].items()}
    types: dict[int, int] = {}
    for added in tj.get("added_tokens", []):
        by_id[int(added["id"])] = added["content"]
        types[int(added["id"])] = 3 if added.get("special") else 4   # CONTROL / USER_DEFINED
    if max(by_id) + 1 > vocab_size:
        raise ExportError(f"{tj_file}: the tokenizer has {max(by_id) + 1} tokens but the model's embedding only "
                          f"{vocab_size} rows; resize the embeddings before exporting")
    n = vocab_size
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(n)]
    token_types = [types.get(i, 1 if i in by_id else 5) for i in range(n)]   # NORMAL / UNUSED
    # tokenizers stores merges as "a b" (older files) or ["a", "b"] (newer files).
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]

    tok = load_tokenizer(model_dir)
    special = {k: v for k in ("bos", "eos", "unk", "pad") if (v := _special_id(tok, k)) is not None}
    # Does plain encoding add BOS/EOS? Compare with and without special tokens.
    with_special = tok("a", add_special_tokens=True)["input_ids"]
    extra = len(with_special) > len(tok("a", add_special_tokens=False)["input_ids"])
    return GGUFVocab(
        tokens=tokens, token_types=token_types, merges=merges, pre=pre, special_ids=special,
        add_bos=extra and with_special[0] == special.get("bos"),
        add_eos=extra and with_special[-1] == special.get("eos"),
        chat_template=tok.chat_template if isinstance(tok.chat_template, str) else None,
    )


def add_vocab(writer, vocab: GGUFVocab) -> None:
    writer.add_tokenizer_model("gpt2")   # llama.cpp's name for byte-level BPE
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    adders = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
              "unk": writer.add_unk_token_id, "pad": writer.add_pad_token_id}
    for key, tid in vocab.special_ids.items():
        adders[key](tid)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)
