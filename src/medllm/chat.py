"""``medllm chat``: a multi-turn terminal chat with streamed answers, for quick checks
of a trained run or any model. Commands: /reset (forget the conversation), /exit."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

DISCLAIMER = ("Answers come from a language model and can be wrong; they are not medical advice. "
              "In an emergency call your local emergency number.")
HELP = "Commands: /reset forgets the conversation, /exit (or Ctrl-D) quits, /help shows this."


def _stop_on_event_class():
    from transformers import StoppingCriteria

    class StopOnEvent(StoppingCriteria):
        def __init__(self, event: threading.Event):
            self.event = event

        def __call__(self, input_ids, scores, **kwargs):
            import torch

            return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)

    return StopOnEvent


def _StopOnEvent(event: threading.Event):
    return _stop_on_event_class()(event)


class ChatSession:
    """Conversation state + streamed generation for one loaded model."""

    def __init__(self, model, tokenizer, *, system: str | None = None, temperature: float = 0.6,
                 top_p: float = 0.9, top_k: int = 50, repetition_penalty: float = 1.2,
                 max_new_tokens: int = 256, seed: int | None = None):
        self.model, self.tok, self.system = model, tokenizer, system
        self.sampling = dict(temperature=temperature, top_p=top_p, top_k=top_k,
                             repetition_penalty=repetition_penalty)
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.messages: list[dict] = [{"role": "system", "content": self.system}] if self.system else []

    def _prompt_ids(self):
        """Chat-templated history; the oldest turns are dropped (system kept) when the
        conversation would no longer fit the model's context with room for the answer."""
        limit = int(getattr(self.model.config, "max_position_embeddings", 2048)) - self.max_new_tokens
        while True:
            ids = self.tok.apply_chat_template(self.messages, add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)["input_ids"]
            first = 1 if self.system else 0
            if ids.shape[-1] <= limit or len(self.messages) - first <= 1:
                return ids[:, -limit:] if limit > 0 else ids
            del self.messages[first:first + 2]   # one user turn + its answer

    def generation_kwargs(self) -> dict:
        from medllm.models import stop_token_ids

        greedy = self.sampling["temperature"] <= 0
        # every turn-end id, not only the tokenizer's eos: Llama-3-Instruct ends turns with <|eot_id|>
        kw = dict(max_new_tokens=self.max_new_tokens, do_sample=not greedy,
                  repetition_penalty=self.sampling["repetition_penalty"],
                  eos_token_id=stop_token_ids(self.model, self.tok), pad_token_id=self.tok.pad_token_id)
        if not greedy:
            kw.update(temperature=self.sampling["temperature"], top_p=self.sampling["top_p"],
                      top_k=self.sampling["top_k"])
        return kw

    def stream(self, user_text: str) -> Iterator[str]:
        """Yield the answer to ``user_text`` piece by piece; the turn is kept in history."""
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        self.messages.append({"role": "user", "content": user_text})
        from medllm.models import model_device

        input_ids = self._prompt_ids().to(model_device(self.model))
        streamer = TextIteratorStreamer(self.tok, skip_prompt=True, skip_special_tokens=True, timeout=600)
        errors: list[BaseException] = []
        stop = threading.Event()   # set when the reader goes away (Ctrl-C): generation ends too

        def work():
            try:
                if self.seed is not None:
                    torch.manual_seed(self.seed)
                with torch.inference_mode():
                    self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                        streamer=streamer, stopping_criteria=StoppingCriteriaList([_StopOnEvent(stop)]),
                                        **self.generation_kwargs())
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        pieces = []
        try:
            for piece in streamer:
                pieces.append(piece)
                yield piece
        except BaseException:
            stop.set()
            thread.join()
            self.messages.pop()
            raise
        thread.join()
        if errors:
            self.messages.pop()   # the question got no answer; do not keep half a turn
            raise errors[0]
        self.messages.append({"role": "assistant", "content": "".join(pieces).strip()})


def run_chat(session: ChatSession, *, read: Callable[[str], str] = input,
             write: Callable[[str], None] | None = None, banner: str = "") -> int:
    """The read-answer loop. Returns the number of answered questions."""
    import sys

    def out(text: str) -> None:
        if write is not None:
            write(text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    out(f"{banner}\n" if banner else "")
    out(f"Disclaimer: {DISCLAIMER}\n{HELP}\n")
    answered = 0
    while True:
        try:
            line = read("you> ")
        except (EOFError, KeyboardInterrupt):
            out("\n")
            break
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            session.reset()
            out("(conversation reset)\n")
            continue
        if text == "/help":
            out(HELP + "\n")
            continue
        if text.startswith("/"):
            out(f"unknown command {text.split()[0]}; {HELP}\n")
            continue
        out("assistant> ")
        try:
            for piece in session.stream(text):
                out(piece)
        except KeyboardInterrupt:
            out("\n(interrupted)\n")
            continue
        out("\n")
        answered += 1
    return answered
