"""Model backends: an in-process Hugging Face model (+ optional PEFT adapter) and any
OpenAI-compatible HTTP endpoint. Both answer the same three questions:

``loglik(requests)``  -> per request, per continuation: (sum log p(continuation | context), is_greedy)
``generate(chats)``   -> greedy completions for chat-message prompts
``token_nll(texts)``  -> (sum of token negative log-likelihoods, number of scored tokens) per text

Speed on CPU (why the HF path looks the way it does): requests are sorted by length and
batched with right padding; when every continuation is one token after the same context
(PubMedQA yes/no/maybe, MMLU letters) all choices are read from ONE forward of the context;
only the needed positions go through the 49k-vocab LM head; weights are bf16 on AMX CPUs.
Right padding under a causal mask never reaches a real token, so plain scoring batches pass
no attention mask: SDPA then takes its fused causal kernel instead of a materialised
batch x heads x L x L mask (measured in docs/evaluation.md). With bf16 weights the head and
log-softmax run in fp32 on the selected rows only: bf16 logits (8 mantissa bits, ~0.06 at a
logit of 16) flip near-tied choices; in fp32 the rows cost ~57 MFLOP each and one fp32 copy
of the head (~113 MB for a 49k x 576 head).
"""
from __future__ import annotations

import os
from typing import Any, Protocol

from medllm.eval.prompts import LoglikRequest
from medllm.progress import progress


class BackendError(RuntimeError):
    pass


class Backend(Protocol):
    name: str

    def loglik(self, requests: list[LoglikRequest]) -> list[list[tuple[float, bool]]]: ...

    def generate(self, chats: list[list[dict]], max_new_tokens: int) -> list[str]: ...

    def token_nll(self, texts: list[str], max_len: int = 512) -> list[tuple[float, int]]: ...


def is_endpoint(model: str | os.PathLike) -> bool:
    return str(model).startswith(("http://", "https://"))


def make_backend(model: str | os.PathLike, *, adapter=None, batch_size: int = 8, dtype: str = "auto",
                 api_model: str | None = None, generate_batch_size: int | None = None) -> Backend:
    if is_endpoint(model):
        return OpenAIBackend(str(model), model_name=api_model)
    return HFBackend(model, adapter=adapter, batch_size=batch_size, dtype=dtype,
                     generate_batch_size=generate_batch_size)


# ======================================================================= in-process HF
class HFBackend:
    def __init__(self, model, *, adapter=None, batch_size: int = 8, dtype: str = "auto",
                 generate_batch_size: int | None = None):
        import torch

        from medllm.models import load_causal_lm, model_device, stop_token_ids

        self.model, self.tok = load_causal_lm(model, dtype=dtype, adapter=adapter)
        # inputs follow the model (cuda:N under a launcher, the first shard's device with device_map)
        self.device = model_device(self.model)
        self.stop_ids = stop_token_ids(self.model, self.tok)
        self.name = str(model) + (f"+{adapter}" if adapter else "")
        self.batch_size = batch_size
        self.generate_batch_size = generate_batch_size or batch_size
        self.dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        self._decoder = base.get_decoder()          # LoRA layers live inside, so adapters still apply
        self._head = base.get_output_embeddings()
        cfg = base.config
        self.max_len = int(getattr(cfg, "max_position_embeddings", 2048) or 2048)
        self._torch = torch
        self._head_w = self._head_b = None
        w = getattr(self._head, "weight", None)
        if type(self._head) is torch.nn.Linear and w is not None and w.dtype in (torch.bfloat16, torch.float16):
            # a plain Linear only: a LoRA-wrapped head must run through its own forward
            self._head_w = w.detach().float()
            self._head_b = None if self._head.bias is None else self._head.bias.detach().float()

    def _logp(self, hidden):
        """fp32 log-probabilities over the vocabulary for the given hidden rows only."""
        if self._head_w is not None:
            return self._torch.nn.functional.linear(hidden.float(), self._head_w, self._head_b).log_softmax(-1)
        return self._head(hidden).float().log_softmax(-1)

    def _put(self, t):
        """Every tensor the backend builds goes to the model's device through here."""
        return t.to(self.device)

    # ---- tokenisation exactly like lm-eval: trailing context spaces move into the continuation,
    # the continuation is what encode(context + continuation) adds after encode(context).
    def _enc(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def _pair(self, ctx: str, cont: str) -> tuple[list[int], list[int]]:
        n = len(ctx) - len(ctx.rstrip())
        if n:
            ctx, cont = ctx[:-n], ctx[-n:] + cont
        ctx_ids = self._enc(ctx) if ctx else [self.tok.eos_token_id]
        whole = self._enc(ctx + cont) if ctx else ctx_ids + self._enc(cont)
        return ctx_ids, whole[len(ctx_ids):] if ctx else whole[1:]

    def _batches(self, seqs: list[list[int]], *, left: bool = False, pad: int | None = None,
                 size: int | None = None):
        """Longest first, ``batch_size`` at a time: (row indices, ids, attention mask) padded
        on the right (scoring) or on the left (generation continues from the last token)."""
        torch = self._torch
        if pad is None:
            pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        size = size or self.batch_size
        for s in range(0, len(order), size):
            idx = order[s:s + size]
            width = max(len(seqs[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                n = len(seqs[i])
                cols = slice(width - n, width) if left else slice(0, n)
                ids[r, cols] = torch.tensor(seqs[i])
                mask[r, cols] = 1
            yield idx, self._put(ids), self._put(mask)

    def _score_rows(self, rows: list[tuple[list[int], list[int]]], desc: str) -> list[tuple[float, bool]]:
        """rows: (input ids, target ids) -> log p(targets) read at the last len(targets) positions."""
        torch = self._torch
        out: list[Any] = [None] * len(rows)
        bar = progress(total=len(rows), desc=desc, unit="seq")
        with torch.inference_mode():
            for idx, ids, mask in self._batches([r[0] for r in rows]):
                hidden = self._decoder(input_ids=ids).last_hidden_state   # right padding: no mask needed
                spans = []
                for r, i in enumerate(idx):
                    seq, tgt = rows[i]
                    spans.append((r, list(range(len(seq) - len(tgt), len(seq))), tgt))
                for i, res in zip(idx, self._score_spans(hidden, spans)):
                    out[i] = res
                bar.update(len(idx))
        bar.close()
        return out

    def loglik(self, requests: list[LoglikRequest]) -> list[list[tuple[float, bool]]]:
        torch = self._torch
        shared_rows, shared_meta, full_rows, full_meta = [], [], [], []
        tree_items, tree_meta = [], []
        for qi, req in enumerate(requests):
            pairs = [self._pair(req.context, c) for c in req.continuations]
            ctx_ids = pairs[0][0][-(self.max_len):]
            if all(len(cont) == 1 and p[0] == pairs[0][0] for p, cont in ((p, p[1]) for p in pairs)):
                shared_rows.append(ctx_ids)
                shared_meta.append((qi, [p[1][0] for p in pairs]))
            elif all(p[0] == pairs[0][0] for p in pairs) and \
                    len(pairs[0][0]) + sum(len(p[1]) for p in pairs) <= self.max_len:
                tree_items.append((pairs[0][0], [p[1] for p in pairs]))
                tree_meta.append(qi)
            else:
                for ci, (ctx, cont) in enumerate(pairs):
                    seq = (ctx + cont)[-(self.max_len + 1):]
                    full_rows.append((seq[:-1], cont))
                    full_meta.append((qi, ci))
        results: list[list] = [[None] * len(r.continuations) for r in requests]
        if shared_rows:  # one forward per context; every single-token choice read at its last position
            bar = progress(total=len(shared_rows), desc="loglik", unit="ex")
            with torch.inference_mode():
                for idx, ids, mask in self._batches(shared_rows):
                    hidden = self._decoder(input_ids=ids).last_hidden_state   # right padding: no mask needed
                    last = self._put(torch.tensor([len(shared_rows[i]) - 1 for i in idx]))
                    logp = self._logp(hidden[self._put(torch.arange(len(idx))), last])
                    for r, i in enumerate(idx):
                        qi, toks = shared_meta[i]
                        best = int(logp[r].argmax())
                        results[qi] = [(float(logp[r, t]), best == t) for t in toks]
                    bar.update(len(idx))
            bar.close()
        if tree_items:
            for qi, res in zip(tree_meta, self._score_trees(tree_items)):
                results[qi] = res
        if full_rows:
            for (qi, ci), res in zip(full_meta, self._score_rows(full_rows, "loglik (multi-token)")):
                results[qi][ci] = res
        return results

    def _score_trees(self, items: list[tuple[list[int], list[list[int]]]]) -> list[list[tuple[float, bool]]]:
        """Multi-token choices after one shared context, all in one row: the context once, then
        each choice with positions restarting after the context and a 4-D mask letting a choice
        see the context and its own earlier tokens only. Same scores as one row per choice, for
        about 1/k of the context compute with k choices."""
        torch = self._torch
        rows = []
        for ctx, conts in items:
            ids, pos, seg = list(ctx), list(range(len(ctx))), [0] * len(ctx)
            spans = []
            for k, cont in enumerate(conts, start=1):
                spans.append((len(ids), len(cont)))
                ids += cont
                pos += range(len(ctx), len(ctx) + len(cont))
                seg += [k] * len(cont)
            rows.append((ids, pos, seg, len(ctx), spans, conts))
        out: list[Any] = [None] * len(rows)
        bar = progress(total=len(rows), desc="loglik (shared context)", unit="ex")
        with torch.inference_mode():
            for idx, ids, _ in self._batches([r[0] for r in rows]):
                width = ids.shape[1]
                pos = torch.zeros((len(idx), width), dtype=torch.long)
                seg = torch.full((len(idx), width), -1, dtype=torch.long)   # -1: padding
                for r, i in enumerate(idx):
                    n = len(rows[i][0])
                    pos[r, :n], seg[r, :n] = torch.tensor(rows[i][1]), torch.tensor(rows[i][2])
                causal = torch.ones(width, width, dtype=torch.bool).tril()
                same = (seg[:, :, None] == seg[:, None, :]) | (seg[:, None, :] == 0)
                mask = causal[None] & same & (seg[:, None, :] >= 0)
                mask |= torch.eye(width, dtype=torch.bool)[None]   # padded rows attend to themselves (no NaN)
                hidden = self._decoder(input_ids=ids, position_ids=self._put(pos),
                                       attention_mask=self._put(mask[:, None])).last_hidden_state
                wanted, owner = [], []
                for r, i in enumerate(idx):
                    _, _, _, n_ctx, spans, conts = rows[i]
                    for (start, m), cont in zip(spans, conts):
                        # the first choice token is predicted by the context's last position
                        wanted.append((r, [n_ctx - 1] + list(range(start, start + m - 1)), cont))
                        owner.append(i)
                for i, res in zip(owner, self._score_spans(hidden, wanted)):
                    out[i] = (out[i] or []) + [res]
                bar.update(len(idx))
        bar.close()
        return out

    HEAD_ROWS = 1024   # hidden rows per head matmul: [rows x vocab] fp32 log-probs at a time

    def _score_spans(self, hidden, spans: list[tuple[int, list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(log p(targets), greedy) for each (batch row, positions, target ids) span. The head
        runs on all the batch's scored positions together, ``HEAD_ROWS`` at a time: one read of
        the [vocab x hidden] weight per chunk instead of one per span (a 49K-vocab head in fp32
        is ~113 MB, which dominated short multiple-choice spans)."""
        torch = self._torch
        if not spans:
            return []
        rows = torch.tensor([r for r, pos, _ in spans for _ in pos])
        cols = torch.tensor([p for _, pos, _ in spans for p in pos])
        tgt = self._put(torch.tensor([t for _, _, tg in spans for t in tg]))
        picked = hidden[self._put(rows), self._put(cols)]
        lp, hit = [], []
        for s in range(0, picked.shape[0], self.HEAD_ROWS):
            logp = self._logp(picked[s:s + self.HEAD_ROWS])
            t = tgt[s:s + self.HEAD_ROWS]
            lp.append(logp.gather(1, t[:, None]).squeeze(1))
            hit.append(logp.argmax(-1) == t)
        lp_all, hit_all = torch.cat(lp).cpu(), torch.cat(hit).cpu()   # summed in fp32 per span, as before
        out, a = [], 0
        for _, pos, tg in spans:
            out.append((float(lp_all[a:a + len(pos)].sum()), bool(hit_all[a:a + len(pos)].all())))
            a += len(pos)
        return out

    def generate(self, chats: list[list[dict]], max_new_tokens: int) -> list[str]:
        torch = self._torch
        prompts = [self.tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
        enc = [self._enc(p)[-(self.max_len - max_new_tokens):] for p in prompts]
        out: list[str] = [""] * len(enc)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        bar = progress(total=len(enc), desc="generate", unit="ex")
        with torch.inference_mode():
            for idx, ids, mask in self._batches(enc, left=True, pad=pad, size=self.generate_batch_size):
                gen = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                          do_sample=False, pad_token_id=pad, eos_token_id=self.stop_ids)
                for r, i in enumerate(idx):
                    out[i] = self.tok.decode(gen[r, ids.shape[1]:], skip_special_tokens=True).strip()
                bar.update(len(idx))
        bar.close()
        return out

    def token_nll(self, texts: list[str], max_len: int = 512) -> list[tuple[float, int]]:
        rows, owner = [], []
        for ti, text in enumerate(texts):
            ids = [self.tok.eos_token_id] + self._enc(text)  # score the first token too, after a boundary
            for s in range(0, len(ids) - 1, max_len):
                chunk = ids[s:s + max_len + 1]
                if len(chunk) > 1:
                    rows.append((chunk[:-1], chunk[1:]))
                    owner.append(ti)
        sums = [[0.0, 0] for _ in texts]
        for ti, (row, (lp, _)) in zip(owner, zip(rows, self._score_rows(rows, "perplexity"))):
            sums[ti][0] -= lp
            sums[ti][1] += len(row[1])
        return [(s, n) for s, n in sums]


# ======================================================================= OpenAI-compatible HTTP
class OpenAIBackend:
    """Chat completions for generation; ``/completions`` with ``echo`` + ``logprobs`` for loglik
    (vLLM and llama.cpp-style servers return prompt logprobs that way)."""

    def __init__(self, base_url: str, *, model_name: str | None = None, timeout: float = 120.0):
        import httpx

        self.base = base_url.rstrip("/")
        if not self.base.endswith("/v1"):
            self.base += "/v1"
        key = os.environ.get("MEDLLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {key}"} if key else {})
        self.model_name = model_name or self._first_model()
        self.name = f"{self.base}#{self.model_name}"
        self.dtype = "remote"

    def _post(self, path: str, body: dict) -> dict:
        import httpx

        try:
            r = self.client.post(self.base + path, json=body)
        except httpx.HTTPError as exc:
            raise BackendError(f"{self.base}{path}: {exc}") from None
        if r.status_code != 200:
            raise BackendError(f"{self.base}{path}: HTTP {r.status_code}: {r.text[:300]}")
        return r.json()

    def _first_model(self) -> str:
        try:
            data = self.client.get(self.base + "/models").json()
            return data["data"][0]["id"]
        except Exception:  # servers without /models accept any name
            return "default"

    def generate(self, chats: list[list[dict]], max_new_tokens: int) -> list[str]:
        out = []
        for chat in progress(chats, desc="generate (http)", unit="ex"):
            data = self._post("/chat/completions", {"model": self.model_name, "messages": chat,
                                                    "max_tokens": max_new_tokens, "temperature": 0.0})
            out.append((data["choices"][0]["message"].get("content") or "").strip())
        return out

    def _prompt_logprobs(self, text: str) -> tuple[list[float | None], list[int]]:
        data = self._post("/completions", {"model": self.model_name, "prompt": text, "max_tokens": 1,
                                           "echo": True, "logprobs": 1, "temperature": 0.0})
        lp = (data.get("choices") or [{}])[0].get("logprobs") or {}
        if not lp.get("token_logprobs") or not lp.get("text_offset"):
            raise BackendError(f"{self.base}/completions returned no prompt logprobs (echo+logprobs); "
                               "this endpoint supports mode: generate only")
        return lp["token_logprobs"], lp["text_offset"]

    def loglik(self, requests: list[LoglikRequest]) -> list[list[tuple[float, bool]]]:
        out = []
        for req in progress(requests, desc="loglik (http)", unit="ex"):
            row = []
            for cont in req.continuations:
                lps, offs = self._prompt_logprobs(req.context + cont)
                # the echoed completion token (if any) sits past the prompt text; drop it
                picked = [lp for lp, off in zip(lps, offs) if len(req.context) <= off < len(req.context + cont)]
                row.append((float(sum(x for x in picked if x is not None)), False))
            out.append(row)
        return out

    def token_nll(self, texts: list[str], max_len: int = 512) -> list[tuple[float, int]]:
        out = []
        for text in texts:
            lps, _ = self._prompt_logprobs(text)
            vals = [x for x in lps if x is not None]
            out.append((-float(sum(vals)), len(vals)))
        return out
