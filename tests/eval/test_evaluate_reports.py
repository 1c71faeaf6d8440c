"""evaluate() end to end on the tiny model: resumable cache, reports, compare, safety,
forgetting, pairwise position swap, and the real shared data files."""
from __future__ import annotations

import json

import pytest

from medllm.config.eval import EvalTask
from tests.eval.conftest import ScriptedBackend, write_jsonl


@pytest.fixture
def mcq_file(tmp_path):
    return write_jsonl(tmp_path / "medqa.jsonl", [
        {"question": f"Q{i}: which drug treats condition {i}?", "options": {"A": "aspirin", "B": "heparin",
                                                                          "C": "insulin", "D": "statin"},
         "answer_idx": "ABCD"[i % 4]} for i in range(6)])


def test_evaluate_resumes_from_cache_and_writes_reports(tiny_model_dir, mcq_file, tmp_path, monkeypatch):
    from medllm.eval import compare, evaluate

    tasks = [EvalTask(task="medqa", path=str(mcq_file), shots=1)]
    out = tmp_path / "run"
    first = evaluate(tiny_model_dir, tasks, out, max_new_tokens=4, dtype="float32", label="base")
    assert set(first["tasks"]) == {"medqa:loglik:1shot"}
    for name in ("results.json", "report.md", "report.html", "predictions/medqa_loglik_1shot.jsonl"):
        assert (out / name).is_file()
    preds = [json.loads(x) for x in (out / "predictions/medqa_loglik_1shot.jsonl").read_text().splitlines()]
    assert len(preds) == 6 and first["tasks"]["medqa:loglik:1shot"]["metrics"]["acc"]["value"] == pytest.approx(
        sum(p["scores"]["acc"] for p in preds) / 6, abs=1e-5)
    assert "<img" in (out / "report.html").read_text()

    # simulate an interrupt: the cache lost its last line and has a torn one; only that example is recomputed
    cache = out / "cache" / "medqa_loglik_1shot.jsonl"
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:-1]) + '\n{"key": "torn')
    import medllm.eval.backends as B

    calls = []
    real = B.make_backend
    monkeypatch.setattr(B, "make_backend", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = evaluate(tiny_model_dir, tasks, out, max_new_tokens=4, dtype="float32", label="again")
    assert calls == [1]  # backend built once, for the one missing example
    assert again["tasks"]["medqa:loglik:1shot"]["metrics"] == first["tasks"]["medqa:loglik:1shot"]["metrics"]
    assert any("5 of 6 examples reused" in n for n in again["tasks"]["medqa:loglik:1shot"]["notes"])

    comp = compare(out / "results.json", out, tmp_path / "cmp")
    assert all(r["delta"] == 0 for r in comp["rows"]) and (tmp_path / "cmp" / "compare.html").is_file()


def test_demo_mcq_builtin(tiny_model_dir, tmp_path):
    pytest.importorskip("medllm.data.builtin")
    from medllm.eval import evaluate

    res = evaluate(tiny_model_dir, [EvalTask(task="demo_mcq", limit=4)], tmp_path, dtype="float32", report=False)
    assert res["tasks"]["demo_mcq:loglik"]["n"] == 4


def test_optional_task_without_data_is_skipped(tmp_path):
    from medllm.eval import evaluate

    res = evaluate("tiny-llama", [EvalTask(task="medqa", path=str(tmp_path / "absent.jsonl"), optional=True)],
                   tmp_path / "o", report=True)
    assert res["tasks"] == {} and "medqa:loglik" in res["skipped"]


def test_safety_scoring_and_run(tmp_path):
    from medllm.eval.safety import PROBES, run_safety

    class F:
        model_id = "x"

        def __call__(self):
            return ScriptedBackend(answers={p.prompt: ("Call emergency services now." if p.category == "emergency"
                                                       else "Sure.") for p in PROBES})
    res = run_safety(F(), tmp_path)
    n_em = sum(p.category == "emergency" for p in PROBES)
    assert res["by_category"]["emergency"]["safe_rate"] == 1.0
    assert res["by_category"]["dangerous"]["safe_rate"] == 0.0
    assert res["metrics"]["safe"]["value"] == pytest.approx(n_em / len(PROBES))
    assert "rubric" in res["scorer"] and res["by_element"]["must:escalate_now"]["met_rate"] == 1.0
    rec = json.loads((tmp_path / "predictions" / "safety.jsonl").read_text().splitlines()[0])
    assert rec["must"] == {"escalate_now": True} and "MUST" in rec["rubric"]


def test_forgetting_probe_reports_two_perplexities(tiny_model_dir, tmp_path):
    from medllm.eval import evaluate

    dom = tmp_path / "dom.txt"
    dom.write_text("Metformin lowers hepatic glucose output.\n\nHeparin potentiates antithrombin.")
    gen = write_jsonl(tmp_path / "gen.jsonl", [{"text": "The train left the station at noon."}])
    res = evaluate(tiny_model_dir, [], tmp_path / "o", dtype="float32",
                   forgetting={"domain": dom, "general": gen})
    f = res["forgetting"]
    assert f["domain"]["texts"] == 2 and f["general"]["texts"] == 1
    assert 1 < f["domain"]["perplexity"] < 1e6 and "Forgetting" in (tmp_path / "o" / "report.md").read_text()


def test_pairwise_position_swap(tmp_path):
    from medllm.eval.pairwise import ABILITIES, pairwise

    # A judge that always prefers whichever answer is shown first: position bias only -> all draws
    biased = ScriptedBackend(answers={"[Answer 1]": "\n".join(f"{a}: 1" for a in ABILITIES)})
    res = pairwise(None, None, ["q1", "q2"], biased, tmp_path, answers_a=["good", "good"], answers_b=["bad", "bad"])
    assert all(res["table"][a] == {"win": 0, "draw": 2, "loss": 0, "unparsed": 0} for a in ABILITIES)

    class Fair(ScriptedBackend):  # prefers the answer "good" in either position, on safety only ties
        def generate(self, chats, n):
            outs = []
            for c in chats:
                first_good = c[-1]["content"].index("good") < c[-1]["content"].index("bad")
                outs.append("\n".join(f"{a}: {'tie' if a == 'safety' else (1 if first_good else 2)}"
                                      for a in ABILITIES))
            return outs
    res = pairwise(None, None, ["q1", "q2"], Fair(), tmp_path, answers_a=["good", "bad"], answers_b=["bad", "good"])
    assert res["table"]["clarity"] == {"win": 1, "draw": 0, "loss": 1, "unparsed": 0}
    assert res["table"]["safety"] == {"win": 0, "draw": 2, "loss": 0, "unparsed": 0}
    assert res["table"]["expertise"] == {"win": 1, "draw": 0, "loss": 1, "unparsed": 0}
    assert (tmp_path / "pairwise.html").is_file()


@pytest.mark.shared_data
def test_shared_pubmedqa_and_mmlu_load(shared_data):
    from medllm.eval.loaders import load_examples
    from medllm.eval.spec import load_spec

    pq = load_examples(load_spec("pubmedqa"), shared_data / "pubmedqa" / "pqal_test.jsonl")
    counts = {lab: sum(e["choices"][e["answer"]] == lab for e in pq) for lab in ("yes", "no", "maybe")}
    assert len(pq) == 500 and counts == {"yes": 276, "no": 169, "maybe": 55}  # README figures
    ori = load_examples(load_spec("pubmedqa"), shared_data / "pubmedqa" / "ori_pqal.json")
    assert len(ori) == 1000
    mm = load_examples(load_spec("mmlu_medical"), shared_data / "mmlu_med")
    assert len(mm) == 1089 and {e["subject"] for e in mm} >= {"anatomy", "professional_medicine"}
