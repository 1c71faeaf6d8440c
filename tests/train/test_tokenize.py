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
