"""Fast checks of formatting and masking (no training)."""
from __future__ import annotations

import pytest

from medllm.train.fast_lm import CausalCollator
from medllm.train.tokenize import IGNORE, EmptyDataset, SequenceTooLong, pack_text, tokenize_conversation, tokenize_sft

CONV = [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Symptoms of flu?"},
        {"role": "assistant", "content": "Fever and cough."},
        {"role": "user", "content": "Treatment?"},
        {"role": "assistant", "content": "Rest and fluids."}]


def _target_text(tok, enc):
    return tok.decode([t for t, l in zip(enc["input_ids"], enc["labels"]) if l != IGNORE])


def test_masking_token_by_token_multi_turn(tiny_tokenizer):
    tok = tiny_tokenizer
    enc = tokenize_conversation(tok, CONV, max_len=512)
    ids = tok.apply_chat_template(CONV, tokenize=True, return_dict=False)
    if isinstance(ids, dict):
        ids = ids["input_ids"]
    assert enc["input_ids"] == list(ids)  # the template's own tokens, nothing added
    end = tok.convert_tokens_to_ids("<|im_end|>")
    # Expected mask built independently: tokens after each "<|im_start|>assistant\n" up to and incl. <|im_end|>
    start_ids = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    expected, inside = [], False
    for i, t in enumerate(enc["input_ids"]):
        if not inside and enc["input_ids"][max(0, i - len(start_ids)):i] == start_ids:
            inside = True
        expected.append(inside)
        if inside and t == end:
            inside = False
    got = [l != IGNORE for l in enc["labels"]]
    assert got == expected
    assert _target_text(tok, enc) == "Fever and cough.<|im_end|>Rest and fluids.<|im_end|>"
    assert all(l in (IGNORE, t) for t, l in zip(enc["input_ids"], enc["labels"]))


def test_last_turn_only(tiny_tokenizer):
    enc = tokenize_conversation(tiny_tokenizer, CONV, max_len=512, last_turn_only=True)
    assert _target_text(tiny_tokenizer, enc) == "Rest and fluids.<|im_end|>"


def test_sft_errors(tiny_tokenizer):
    from datasets import Dataset

    ds = Dataset.from_list([{"messages": CONV}])
    with pytest.raises(SequenceTooLong, match="model context"):
        tokenize_sft(ds, tiny_tokenizer, max_len=4096, context_len=2048)
    with pytest.raises(EmptyDataset, match="no trainable"):  # the assistant turns lie beyond max_len
        tokenize_sft(ds, tiny_tokenizer, max_len=10)


def test_packed_collator_restarts_positions_and_never_crosses_samples():
    rows = [{"input_ids": [1, 2, 3], "labels": [IGNORE, 2, 3]}, {"input_ids": [4, 5], "labels": [4, 5]}]
    b = CausalCollator(pad_id=0, packed=True)(rows)
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert "attention_mask" not in b  # transformers derives the block-diagonal mask from position_ids
    # token 3 (end of sample 1) must not be trained to predict token 4 (start of sample 2)
    assert b["shift_labels"].tolist() == [[2, 3, IGNORE, 5, IGNORE]]
    p = CausalCollator(pad_id=0)(rows)
    assert p["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert p["shift_labels"].tolist() == [[2, 3, IGNORE], [5, IGNORE, IGNORE]]


def test_packed_attention_equals_separate_samples(tiny_model_dir):
    import torch

    from medllm.models import load_causal_lm

    model, _ = load_causal_lm(tiny_model_dir, dtype="float32")
    a, b = [5, 6, 7, 8], [9, 10, 11]
    la = model(input_ids=torch.tensor([a])).logits[0]
    lb = model(input_ids=torch.tensor([b])).logits[0]
    packed = model(input_ids=torch.tensor([a + b]), position_ids=torch.tensor([[0, 1, 2, 3, 0, 1, 2]]),
                   use_cache=False).logits[0]  # as the trainer calls it: no cache, so packing is detected
    assert torch.allclose(packed[:4], la, atol=1e-5) and torch.allclose(packed[4:], lb, atol=1e-5)


def test_pack_text_puts_eos_between_documents(tiny_tokenizer):
    from datasets import Dataset

    ds = Dataset.from_list([{"text": "alpha beta"}, {"text": "  "}, {"text": "gamma delta"}])
    rows = pack_text(ds, tiny_tokenizer, block=4)
    flat = [t for r in rows["input_ids"] for t in r]
    assert all(len(r) == 4 for r in rows["input_ids"])
    assert flat.count(tiny_tokenizer.eos_token_id) >= 1
    with pytest.raises(EmptyDataset):
        pack_text(Dataset.from_list([{"text": " "}]), tiny_tokenizer, block=4)


def test_text_rows_one_document_per_row(tiny_tokenizer):
    from datasets import Dataset

    from medllm.train.tokenize import text_rows

    rows = text_rows(Dataset.from_list([{"text": "alpha beta gamma"}, {"text": ""}, {"text": "delta"}]),
                     tiny_tokenizer, max_len=3)
    assert len(rows) == 2
    assert all(r[-1] == tiny_tokenizer.eos_token_id and len(r) <= 3 for r in rows["input_ids"])


@pytest.fixture(scope="module")
def bos_tokenizer(tiny_model_dir):
    """The tiny tokenizer made Llama-style: it puts its BOS in front of every text it encodes."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir, add_bos_token=True)
    assert tok("hi")["input_ids"][0] == tok.bos_token_id
    return tok


DOCS = [{"text": "alpha beta gamma delta epsilon"}, {"text": "zeta eta"}, {"text": "theta iota kappa lambda mu nu"}]


def test_pretraining_rows_start_with_bos_where_the_tokenizer_expects_one(bos_tokenizer):
    from datasets import Dataset

    from medllm.train.tokenize import bos_id, text_rows

    tok, bos = bos_tokenizer, bos_tokenizer.bos_token_id
    assert bos_id(tok) == bos
    ds = Dataset.from_list(DOCS)
    packed = pack_text(ds, tok, block=5)["input_ids"]
    words = [tok(d["text"], add_special_tokens=False)["input_ids"] for d in DOCS]
    stream = [t for w in words for t in [bos, *w, tok.eos_token_id]]
    assert len(packed) >= 3 and all(len(r) == 5 and r[0] == bos for r in packed)
    # nothing lost or reordered: rows minus the BOS added at a cut are the stream, in order
    rebuilt = []
    for r in packed:
        rebuilt += r if stream[len(rebuilt):len(rebuilt) + 1] == [bos] else r[1:]
    assert rebuilt == stream[:len(rebuilt)] and len(stream) - len(rebuilt) < 5
    # a row cut at a document start keeps that document's BOS, no doubled BOS
    assert not any(r[i] == r[i + 1] == bos for r in packed for i in range(len(r) - 1))
    rows = text_rows(ds, tok, max_len=4)["input_ids"]
    assert [r[0] for r in rows] == [bos] * 3 and all(len(r) == 4 and r[-1] == tok.eos_token_id for r in rows)
    assert rows[0] == [bos, *words[0][:2], tok.eos_token_id]  # truncation keeps BOS and EOS
    assert text_rows(ds, tok, max_len=16)["input_ids"][1] == [bos, *words[1], tok.eos_token_id]


def test_pretraining_adds_no_bos_where_the_tokenizer_has_none(tiny_tokenizer):
    """SmolLM2's tokenizer declares <|im_start|> as bos_token but never adds it: neither do we."""
    from datasets import Dataset

    from medllm.train.tokenize import bos_id, text_rows

    tok = tiny_tokenizer
    assert tok.bos_token_id is not None and bos_id(tok) is None
    ds = Dataset.from_list(DOCS)
    words = [tok(d["text"], add_special_tokens=False)["input_ids"] for d in DOCS]
    stream = [t for w in words for t in [*w, tok.eos_token_id]]
    packed = pack_text(ds, tok, block=5)["input_ids"]
    assert [t for r in packed for t in r] == stream[:5 * len(packed)]
    assert tok.bos_token_id not in stream
    assert text_rows(ds, tok, max_len=8)["input_ids"][1] == [*words[1], tok.eos_token_id]
