"""`medllm chat`: streamed multi-turn answers, /reset, /exit, context trimming, errors."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from medllm.chat import DISCLAIMER, ChatSession, run_chat
from medllm.cli.main import app

QUESTION = "What is a fever?"


@pytest.fixture(scope="module")
def tiny_lm(sharp_model_dir):
    from medllm.models import load_causal_lm

    return load_causal_lm(sharp_model_dir, dtype="float32")


def greedy_answer(model, tok, messages, max_new_tokens):
    """Reference answer computed without medllm.chat: plain HF generate."""
    import torch

    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, repetition_penalty=1.2,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_cli_chat_streams_the_models_answer(tiny_lm, sharp_model_dir):
    model, tok = tiny_lm
    expected = greedy_answer(model, tok, [{"role": "user", "content": QUESTION}], 8)
    assert len(expected.split()) >= 3
    result = CliRunner().invoke(app, ["chat", str(sharp_model_dir), "--temperature", "0", "--max-tokens", "8",
                                      "--dtype", "float32"],
                                input=f"{QUESTION}\n/exit\nnever read\n")
    assert result.exit_code == 0, result.output
    assert DISCLAIMER in result.stdout
    assert f"assistant> {expected}" in result.stdout
    assert result.stdout.count("assistant> ") == 1   # nothing after /exit was answered


def test_multi_turn_history_and_reset(tiny_lm):
    model, tok = tiny_lm
    session = ChatSession(model, tok, temperature=0, max_new_tokens=6)
    first = "".join(session.stream(QUESTION))
    second = "".join(session.stream("And a cough?"))
    assert [m["role"] for m in session.messages] == ["user", "assistant", "user", "assistant"]
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": first.strip()},
               {"role": "user", "content": "And a cough?"}]
    assert second.strip() == greedy_answer(model, tok, history, 6).strip()   # the answer saw the history
    seen = []
    answered = run_chat(session, read=_reader(["/reset", QUESTION, "/bogus", "", "/exit"]), write=seen.append)
    assert answered == 1
    text = "".join(seen)
    assert "(conversation reset)" in text and "unknown command /bogus" in text
    assert f"assistant> {first}" in text   # after /reset the first answer comes back unchanged
    assert len(session.messages) == 2


def _reader(lines):
    it = iter(lines)

    def read(_prompt: str) -> str:
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None
    return read


def test_long_conversations_drop_oldest_turns_but_keep_system(tiny_lm):
    model, tok = tiny_lm
    session = ChatSession(model, tok, system="Be brief.", max_new_tokens=model.config.max_position_embeddings - 200)
    for i in range(20):
        session.messages += [{"role": "user", "content": f"question {i} " + "word " * 20},
                             {"role": "assistant", "content": f"answer {i} " + "word " * 20}]
    session.messages.append({"role": "user", "content": "latest question"})
    ids = session._prompt_ids()
    assert ids.shape[1] <= 200
    text = tok.decode(ids[0])
    assert "Be brief." in text and "latest question" in text and "question 0 " not in text


def test_generation_error_surfaces_and_keeps_history_clean(tiny_lm, monkeypatch):
    model, tok = tiny_lm
    session = ChatSession(model, tok, temperature=0, max_new_tokens=4)

    def broken(**_kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(model, "generate", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        "".join(session.stream(QUESTION))
    assert session.messages == []


def test_cli_chat_unknown_model_is_a_clear_error():
    result = CliRunner().invoke(app, ["chat", "no-such-model"], input="/exit\n")
    assert result.exit_code == 1 and "unknown model 'no-such-model'" in result.output


def test_answer_stops_on_a_turn_end_that_is_not_the_tokenizers_eos(tiny_lm, monkeypatch):
    """Llama-3-Instruct: the tokenizer's eos is not the turn end; generation_config lists both.
    Here a token the model emits early is declared a turn end in generation_config only."""
    import torch

    model, tok = tiny_lm
    ids = tok.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        free = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=8,
                              repetition_penalty=1.2, eos_token_id=tok.eos_token_id,
                              pad_token_id=tok.pad_token_id)[0, ids.shape[1]:].tolist()
    assert len(free) == 8 and tok.eos_token_id not in free
    k = next(i for i in range(2, len(free)) if free[i] not in free[:i])  # first fresh token after two
    turn_end = free[k]
    monkeypatch.setattr(model.generation_config, "eos_token_id", [tok.eos_token_id, turn_end])
    assert tok.eos_token_id != turn_end
    answer = "".join(ChatSession(model, tok, temperature=0, max_new_tokens=8).stream(QUESTION))
    assert answer == tok.decode(free[:k + 1], skip_special_tokens=True)  # stopped right at the turn end
    assert answer != tok.decode(free, skip_special_tokens=True)
