"""Every task type on a small fixture written here, metric checked against a hand computation."""
from __future__ import annotations

import json

import pytest

from medllm.eval.runner import run_task
from medllm.eval.spec import load_spec
from tests.eval.conftest import write_jsonl


def _run(factory, task, path, tmp_path, mode="generate", shots=0, **kw):
    return run_task(factory, load_spec(task), mode, shots, path, None, tmp_path / "out", max_new_tokens=16,
                    seed=1, **kw)


def _v(res, name):
    return res["metrics"][name]["value"]


def test_medqa_generate_letters(scripted, tmp_path):
    p = write_jsonl(tmp_path / "medqa.jsonl", [
        {"question": "Q-one?", "options": {"A": "aa", "B": "bb", "C": "cc", "D": "dd"}, "answer_idx": "B"},
        {"question": "Q-two?", "options": {"A": "aa", "B": "bb", "C": "cc", "D": "dd", "E": "ee"}, "answer_idx": "E"},
        {"question": "Q-three?", "options": {"A": "aa", "B": "bb", "C": "cc", "D": "dd"}, "answer_idx": "A"},
        {"question": "Q-four?", "options": {"A": "aspirin", "B": "heparin", "C": "cc", "D": "dd"}, "answer_idx": "B"},
    ])
    f = scripted(answers={"Q-one": "The answer is (B).", "Q-two": "E", "Q-three": "A or B, hard to say",
                          "Q-four": "I would give heparin."})
    res = _run(f, "medqa", p, tmp_path)
    assert res["n"] == 4
    assert _v(res, "acc") == pytest.approx(3 / 4)  # Q-three names two options -> unanswered
    assert res["metrics"]["acc"]["ci_low"] <= 0.75 <= res["metrics"]["acc"]["ci_high"]


def test_medmcqa_loglik_acc_and_acc_norm(scripted, tmp_path):
    # raw release: cop is 1-based
    p = write_jsonl(tmp_path / "dev.jsonl", [
        {"id": "m1", "question": "first", "opa": "x", "opb": "y", "opc": "z", "opd": "w", "cop": 1},
        {"id": "m2", "question": "second", "opa": "x", "opb": "y", "opc": "z", "opd": "w", "cop": 4},
    ])
    # continuations are " A".." D" (2 chars each) so acc_norm == acc here; m2 picks C (wrong)
    f = scripted(logliks={"first": [-1.0, -2.0, -3.0, -4.0], "second": [-5.0, -4.0, -0.5, -1.0]})
    res = _run(f, "medmcqa", p, tmp_path, mode="loglik")
    assert _v(res, "acc") == 0.5 and _v(res, "acc_norm") == 0.5
    preds = [json.loads(x) for x in (tmp_path / "out" / res["predictions"]).read_text().splitlines()]
    assert [r["pred"] for r in preds] == ["A", "C"] and [r["gold"] for r in preds] == ["A", "D"]


def test_pubmedqa_acc_norm_uses_choice_length(scripted, tmp_path):
    p = write_jsonl(tmp_path / "pq.jsonl", [
        {"pubid": "1", "QUESTION": "q1", "CONTEXTS": ["ctx-one"], "final_decision": "maybe"},
    ])
    # lm-eval divides by the choice's length without its leading space: yes 3, no 2, maybe 5.
    # raw argmax = no (-2.4); per char: -1.1, -1.2, -1.08 -> maybe. Counting the space
    # (4, 3, 6) would give -0.825, -0.8, -0.9 -> no.
    f = scripted(logliks={"ctx-one": [-3.3, -2.4, -5.4]})
    res = _run(f, "pubmedqa", p, tmp_path, mode="loglik")
    assert _v(res, "acc") == 0.0 and _v(res, "acc_norm") == 1.0


def test_extractive_qa_em_f1(scripted, tmp_path):
    data = {"data": [{"paragraphs": [{"context": "Patient takes metformin 500 mg twice daily.", "qas": [
        {"id": "a", "question": "QA1 what drug?", "answers": [{"text": "metformin", "answer_start": 14}]},
        {"id": "b", "question": "QA2 what dose?", "answers": [{"text": "500 mg twice daily", "answer_start": 24}]},
    ]}]}]}
    p = tmp_path / "emr.json"
    p.write_text(json.dumps(data))
    f = scripted(answers={"QA1": "Metformin.", "QA2": "500 mg daily"})
    res = _run(f, "emrqa", p, tmp_path)
    assert _v(res, "exact_match") == pytest.approx(0.5)
    # QA2: pred {500, mg, daily} vs gold {500, mg, twice, daily}: P=1, R=3/4 -> F1=6/7
    assert _v(res, "f1") == pytest.approx((1 + 6 / 7) / 2)


def test_ner_entity_f1_micro_macro(scripted, tmp_path):
    p = tmp_path / "ner.conll"
    p.write_text("Aspirin B-Chemical\ncauses O\nulcers B-Disease\n\n"
                 "Heart B-Disease\nfailure I-Disease\nwith O\nfurosemide B-Chemical\n")
    f = scripted(answers={"Aspirin causes": "Chemical: aspirin\nDisease: causes",
                          "Heart failure": "Disease: heart failure\nChemical: furosemide"})
    res = _run(f, "ner_conll", p, tmp_path)
    # gold 4 entities; predicted 4, correct 3 -> micro P=R=F1=3/4
    assert _v(res, "entity_f1_micro") == pytest.approx(0.75)
    # Chemical: 2/2 correct -> F1 1; Disease: pred {causes, heart failure}, gold {ulcers, heart failure} -> 0.5
    assert _v(res, "entity_f1_macro") == pytest.approx(0.75)


def test_relation_macro_f1(scripted, tmp_path):
    p = write_jsonl(tmp_path / "ddi.jsonl", [
        {"id": "1", "text": "R1 @DRUG$ raises @DRUG$ levels", "label": "mechanism"},
        {"id": "2", "text": "R2 avoid @DRUG$ with @DRUG$", "label": "advise"},
        {"id": "3", "text": "R3 @DRUG$ and @DRUG$ were given", "label": "false"},
        {"id": "4", "text": "R4 @DRUG$ blunts @DRUG$", "label": "effect"},
    ])
    f = scripted(answers={"R1": "mechanism", "R2": "advise", "R3": "false", "R4": "mechanism"})
    res = _run(f, "ddi_relation", p, tmp_path)
    # per gold label F1: mechanism P=1/2 R=1 -> 2/3; advise 1; false 1; effect 0 -> mean (2/3+1+1+0)/4
    assert _v(res, "macro_f1") == pytest.approx((2 / 3 + 2) / 4)
    assert _v(res, "acc") == 0.75


def test_classification_csv(scripted, tmp_path):
    p = tmp_path / "mt.csv"
    p.write_text("transcription,medical_specialty\nC1 chest pain ecg,Cardiology\nC2 knee arthroscopy,Orthopedic\n"
                 "C3 rash biopsy,Dermatology\nC4 palpitations,Cardiology\n")
    f = scripted(answers={"C1": "Cardiology", "C2": "Orthopedic", "C3": "Cardiology", "C4": "Cardiology"})
    res = _run(f, "mtsamples", p, tmp_path)
    assert _v(res, "acc") == 0.75
    # Cardiology P=2/3 R=1 -> 0.8; Orthopedic 1; Dermatology 0
    assert _v(res, "macro_f1") == pytest.approx((0.8 + 1 + 0) / 3)


def test_multilabel_hoc(scripted, tmp_path):
    p = write_jsonl(tmp_path / "hoc.jsonl", [
        {"id": "1", "text": "H1", "labels": ["inducing angiogenesis"]},
        {"id": "2", "text": "H2", "labels": "resisting cell death; genomic instability and mutation"},
    ])
    f = scripted(answers={"H1": "inducing angiogenesis", "H2": "resisting cell death, inducing angiogenesis"})
    res = _run(f, "hoc", p, tmp_path)
    assert _v(res, "exact_match") == 0.5
    # micro: TP=2, FP=1, FN=1 -> P=R=2/3
    assert _v(res, "micro_f1") == pytest.approx(2 / 3)
    # label-wise: angiogenesis P=1/2 R=1 -> 2/3; cell death 1; genomic 0 -> mean over 3 labels seen
    assert _v(res, "labelwise_macro_f1") == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_summarization_rouge_and_bertscore(scripted, tmp_path):
    p = write_jsonl(tmp_path / "meqsum.jsonl", [
        {"CHQ": "S1 who makes cetirizine", "Summary": "Who manufactures cetirizine?"},
        {"CHQ": "S2 dosage question", "Summary": "What is the dose of ibuprofen?"},
    ])
    f = scripted(answers={"S1": "Who manufactures cetirizine?", "S2": "Kidney stones hurt"})
    res = _run(f, "meqsum", p, tmp_path)
    assert _v(res, "rouge1") == pytest.approx(0.5) and _v(res, "rougeL") == pytest.approx(0.5)
    recs = [json.loads(x) for x in (tmp_path / "out" / res["predictions"]).read_text().splitlines()]
    assert recs[0]["scores"]["bertscore_f1"] == pytest.approx(1.0, abs=1e-3)
    assert recs[1]["scores"]["bertscore_f1"] < 0.9
    assert any("non-standard backbone" in n for n in res["notes"])


def test_nli_accuracy(scripted, tmp_path):
    p = write_jsonl(tmp_path / "mednli.jsonl", [
        {"sentence1": "N1 has fever", "sentence2": "is febrile", "gold_label": "entailment"},
        {"sentence1": "N2 no pain", "sentence2": "has pain", "gold_label": "contradiction"},
        {"sentence1": "N3 takes statin", "sentence2": "has diabetes", "gold_label": "neutral"},
    ])
    f = scripted(answers={"N1": "Entailment.", "N2": "This is not entailment; it is a contradiction",
                          "N3": "entailment"})
    res = _run(f, "mednli", p, tmp_path)
    assert _v(res, "acc") == pytest.approx(1 / 3)  # N2 names two labels without a cue -> unanswered


def test_diagnosis_topk_with_string_judge(scripted, tmp_path):
    p = write_jsonl(tmp_path / "cases.jsonl", [
        {"id": "c1", "case": "D1 fever neck stiffness", "diagnosis": ["bacterial meningitis"]},
        {"id": "c2", "case": "D2 chest pain", "diagnosis": "pulmonary embolism"},
        {"id": "c3", "case": "D3 fatigue", "diagnosis": "hypothyroidism"},
    ])
    f = scripted(answers={"D1": "1. Bacterial meningitis\n2. Viral meningitis",
                          "D2": "1. Myocardial infarction\n2. Aortic dissection\n3. Pulmonary embolism",
                          "D3": "1. Anemia\n2. Depression\n3. Sleep apnea\n4. Diabetes\n5. Hypothyroidism"})
    res = _run(f, "diagnosis", p, tmp_path)
    assert _v(res, "top1") == pytest.approx(1 / 3)
    assert _v(res, "top3") == pytest.approx(2 / 3)
    assert _v(res, "top5") == pytest.approx(1.0)


def test_diagnosis_with_model_judge(scripted, tmp_path):
    from tests.eval.conftest import ScriptedBackend

    p = write_jsonl(tmp_path / "cases.jsonl", [{"id": "c1", "case": "D1", "diagnosis": "MI"}])
    f = scripted(answers={"D1": "1. Pneumonia\n2. Heart attack"})
    judge = ScriptedBackend(answers={"Candidate diagnosis: Heart attack": "MATCH", "Candidate": "NO_MATCH"})
    res = _run(f, "diagnosis", p, tmp_path, judge=judge)
    assert _v(res, "top1") == 0.0 and _v(res, "top3") == 1.0
