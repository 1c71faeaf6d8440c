"""Response-only masking, token by token, for the two turn formats the seed recipes train on:
ChatML (SmolLM2, Qwen) and Llama-3 (<|start_header_id|>role<|end_header_id|> ... <|eot_id|>).

The expected mask is built independently of ``tokenize_conversation``'s character spans: a
token is a target iff it lies after an assistant header and up to and including the turn-end
token that closes that turn, found by scanning the token ids alone."""
from __future__ import annotations

import pytest

from medllm.train.tokenize import IGNORE, tokenize_conversation

# A Llama-3-format template (written for this test): BOS, then per turn a role header, a
# blank line, the content and <|eot_id|>; the generation prompt is an assistant header.
LLAMA3_TEMPLATE = (
    "{{- '<|begin_of_text|>' -}}"
    "{%- for m in messages -%}"
    "{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}{%- endif -%}"
)
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

CONV = [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Symptoms of flu?"},
        {"role": "assistant", "content": "Fever and cough."},
        {"role": "user", "content": "Treatment?"},
        {"role": "assistant", "content": "Rest and fluids."},
        {"role": "user", "content": "For how long?"},
        {"role": "assistant", "content": "About a week."}]
ANSWERS = [m["content"] for m in CONV if m["role"] == "assistant"]


@pytest.fixture(scope="module")
def llama3_tok(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.add_special_tokens({"additional_special_tokens": LLAMA3_SPECIALS})
    tok.chat_template = LLAMA3_TEMPLATE
    return tok


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def _formats(tok_chatml, tok_llama3):
    """(tokenizer, assistant header ids, turn-end id) per format (the header's trailing
    newlines are left out: in context BPE may split them differently than alone)."""
    return {
        "chatml": (tok_chatml, _ids(tok_chatml, "<|im_start|>assistant"),
                   tok_chatml.convert_tokens_to_ids("<|im_end|>")),
        "llama3": (tok_llama3, _ids(tok_llama3, "<|start_header_id|>assistant<|end_header_id|>"),
                   tok_llama3.convert_tokens_to_ids("<|eot_id|>")),
    }


def _expected_mask(ids, header, end, tok):
    """After each assistant header and the newline(s) that follow it, every token up to and
    including the turn-end token."""
    mask, state = [], "out"
    for i, t in enumerate(ids):
        if state == "out" and i >= len(header) and ids[i - len(header):i] == header:
            state = "header"
        if state == "header" and tok.decode([t]).strip():
            state = "in"
        mask.append(state == "in")
        if state == "in" and t == end:
            state = "out"
    return mask


@pytest.mark.parametrize("fmt", ["chatml", "llama3"])
@pytest.mark.parametrize("last_turn_only", [False, True])
def test_only_assistant_tokens_and_their_turn_end_carry_labels(fmt, last_turn_only, tiny_tokenizer, llama3_tok):
    tok, header, end = _formats(tiny_tokenizer, llama3_tok)[fmt]
    assert all(isinstance(h, int) for h in header) and end not in (None, tok.unk_token_id)
    enc = tokenize_conversation(tok, CONV, max_len=1024, last_turn_only=last_turn_only)
    ids = enc["input_ids"]
    own = tok.apply_chat_template(CONV, tokenize=True, return_dict=True)["input_ids"]
    assert ids == list(own)  # exactly the template's tokens, nothing added or dropped
    if fmt == "llama3":
        assert ids[0] == tok.convert_tokens_to_ids("<|begin_of_text|>") and ids.count(end) == len(CONV)

    expected = _expected_mask(ids, header, end, tok)
    if last_turn_only:  # only the final assistant turn
        last_start = max(i for i in range(len(ids)) if ids[i - len(header):i] == header)
        expected = [e and i >= last_start for i, e in enumerate(expected)]
    got = [lab != IGNORE for lab in enc["labels"]]
    assert got == expected, [tok.convert_ids_to_tokens([t])[0] for t, g in zip(ids, got) if g]
    assert all(lab in (IGNORE, t) for t, lab in zip(ids, enc["labels"]))  # labels are the tokens themselves

    # what is learnt, read back: every answer followed by its turn end, nothing of the headers or user turns
    targets = tok.decode([t for t, lab in zip(ids, enc["labels"]) if lab != IGNORE])
    turn_end = tok.convert_ids_to_tokens([end])[0]
    answers = ANSWERS[-1:] if last_turn_only else ANSWERS
    assert targets == "".join(a + turn_end for a in answers)
    n_ends = sum(1 for t, lab in zip(ids, enc["labels"]) if t == end and lab != IGNORE)
    assert n_ends == len(answers) < ids.count(end)  # the user/system turn ends are not targets


def test_the_expected_mask_is_not_trivially_equal(llama3_tok):
    """The independent scan really depends on the header: a wrong header finds no target."""
    ids = tokenize_conversation(llama3_tok, CONV, max_len=1024)["input_ids"]
    wrong = _ids(llama3_tok, "<|start_header_id|>user<|end_header_id|>")
    right = _formats(llama3_tok, llama3_tok)["llama3"][1]
    eot = llama3_tok.convert_tokens_to_ids("<|eot_id|>")
    assert _expected_mask(ids, wrong, eot, llama3_tok) != _expected_mask(ids, right, eot, llama3_tok)
