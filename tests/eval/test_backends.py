"""Real backends: the tiny HF model (scoring paths agree with a plain forward) and an
OpenAI-compatible endpoint (a fake server started here on 127.0.0.1)."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from medllm.eval.prompts import LoglikRequest


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    from medllm.eval.backends import HFBackend

    return HFBackend(tiny_model_dir, batch_size=3, dtype="float32")


def _reference_logprob(backend, ctx: str, cont: str) -> float:
    import torch

    ctx_ids, cont_ids = backend._pair(ctx, cont)
    ids = torch.tensor([ctx_ids + cont_ids])
    with torch.no_grad():
        logp = backend.model(ids).logits[0].float().log_softmax(-1)
    return float(sum(logp[len(ctx_ids) - 1 + i, t] for i, t in enumerate(cont_ids)))


def test_loglik_shared_context_and_multi_token_match_plain_forward(tiny_backend):
    reqs = [LoglikRequest("Question: which drug?\nAnswer:", [" A", " B", " C"]),
            LoglikRequest("Short context:", [" heparin sodium", " aspirin", " no"]),
            LoglikRequest("A much longer context about anticoagulation in atrial fibrillation. Answer:",
                          [" yes", " no", " maybe"])]
    got = tiny_backend.loglik(reqs)
    for req, row in zip(reqs, got):
        for cont, (lp, _) in zip(req.continuations, row):
            assert lp == pytest.approx(_reference_logprob(tiny_backend, req.context, cont), abs=1e-4)


def test_multi_token_choices_share_one_row_and_match_plain_forward(tiny_backend, monkeypatch):
    """Padded batches of context + k multi-token choices in one row (4-D mask) score exactly
    like a separate forward per choice, greedy flags included."""
    import torch

    calls = []
    real = tiny_backend._score_trees
    monkeypatch.setattr(tiny_backend, "_score_trees", lambda items: calls.append(len(items)) or real(items))
    reqs = [LoglikRequest("Q: " + "word " * n + "Answer:", [" metformin first", " insulin", " a b c d e"])
            for n in (1, 9, 4, 15, 2)]
    got = tiny_backend.loglik(reqs)
    assert calls == [5]
    for req, row in zip(reqs, got):
        for cont, (lp, greedy) in zip(req.continuations, row):
            assert lp == pytest.approx(_reference_logprob(tiny_backend, req.context, cont), abs=1e-4)
            ctx_ids, cont_ids = tiny_backend._pair(req.context, cont)
            with torch.no_grad():
                logits = tiny_backend.model(torch.tensor([ctx_ids + cont_ids])).logits[0]
            want = all(int(logits[len(ctx_ids) - 1 + i].argmax()) == t for i, t in enumerate(cont_ids))
            assert greedy == want


def test_loglik_independent_of_batch_size(tiny_backend):
    reqs = [LoglikRequest("x " * n + "Answer:", [" A", " B"]) for n in (1, 7, 3, 12, 5)]
    batched = tiny_backend.loglik(reqs)
    tiny_backend.batch_size = 1
    try:
        single = tiny_backend.loglik(reqs)
    finally:
        tiny_backend.batch_size = 3
    for a, b in zip(batched, single):
        assert [x[0] for x in a] == pytest.approx([x[0] for x in b], abs=1e-4)


def test_token_nll_matches_model_loss(tiny_backend):
    import torch

    text = "Metformin is first-line therapy for type 2 diabetes."
    (nll, n), = tiny_backend.token_nll([text])
    ids = torch.tensor([[tiny_backend.tok.eos_token_id] + tiny_backend._enc(text)])
    with torch.no_grad():
        loss = tiny_backend.model(ids, labels=ids).loss
    assert n == ids.shape[1] - 1
    assert nll / n == pytest.approx(float(loss), abs=1e-4)


def test_generate_batched_equals_single(tiny_backend):
    chats = [[{"role": "user", "content": q}] for q in ("Is aspirin an NSAID?", "Dose?", "What is sepsis in adults?")]
    batched = tiny_backend.generate(chats, 6)
    single = [tiny_backend.generate([c], 6)[0] for c in chats]
    assert batched == single and all(isinstance(x, str) for x in batched)


# ------------------------------------------------------------------ OpenAI-compatible endpoint
class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _send(self, obj, code=200):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send({"data": [{"id": "fake-med"}]})

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/chat/completions"):
            last = req["messages"][-1]["content"]
            self._send({"choices": [{"message": {"role": "assistant", "content": "B" if "drug" in last else "yes"}}]})
        elif self.path.endswith("/completions"):
            text = req["prompt"]
            toks = [(m.start(), m.group()) for m in re.finditer(r"\s*\S+", text)] + [(len(text), "<gen>")]
            self._send({"choices": [{"text": text, "logprobs": {
                "tokens": [t for _, t in toks], "text_offset": [o for o, _ in toks],
                "token_logprobs": [None] + [-len(t) / 10 for _, t in toks[1:]]}}]})
        else:
            self._send({"error": "no"}, 404)


@pytest.fixture(scope="module")
def fake_server():
    srv = HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_openai_backend_loglik_and_generate(fake_server):
    from medllm.eval.backends import OpenAIBackend

    b = OpenAIBackend(fake_server)
    assert b.model_name == "fake-med"
    row, = b.loglik([LoglikRequest("Which drug? Answer:", [" A", " heparin sodium"])])
    # tokens after the context: " A" (2 chars) -> -0.2; " heparin" (8) + " sodium" (7) -> -1.5; "<gen>" dropped
    assert [x[0] for x in row] == pytest.approx([-0.2, -1.5])
    assert b.generate([[{"role": "user", "content": "which drug?"}]], 4) == ["B"]


def test_evaluate_against_endpoint(fake_server, tmp_path):
    from medllm.config.eval import EvalTask
    from medllm.eval import evaluate
    from tests.eval.conftest import write_jsonl

    p = write_jsonl(tmp_path / "m.jsonl", [
        {"question": "which drug?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "B"},
        {"question": "which drug now?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "C"}])
    res = evaluate(fake_server, [EvalTask(task="medqa", path=str(p), mode="generate")], tmp_path / "o", report=False)
    assert res["tasks"]["medqa:generate"]["metrics"]["acc"]["value"] == 0.5


def test_generation_batches_follow_generate_batch_size(tiny_model_dir, monkeypatch):
    """eval.generate_batch_size sets the rows per generate call (loglik keeps batch_size), and the
    greedy answers do not depend on it (fp32)."""
    from medllm.eval.backends import HFBackend

    chats = [[{"role": "user", "content": f"Question {i}: what treats condition {i}?"}] for i in range(7)]
    answers = {}
    for gbs in (None, 5):
        b = HFBackend(tiny_model_dir, batch_size=2, dtype="float32", generate_batch_size=gbs)
        rows = []
        real = b.model.generate
        monkeypatch.setattr(b.model, "generate", lambda *a, **k: rows.append(k["input_ids"].shape[0]) or real(*a, **k))
        answers[gbs] = b.generate(chats, max_new_tokens=4)
        assert rows == ([2, 2, 2, 1] if gbs is None else [5, 2])
    assert answers[None] == answers[5]
