"""Answer extraction rules and clear errors for malformed or mislabelled task files."""
from __future__ import annotations

import json

import pytest

from medllm.eval.extract import extract_label, extract_letter, extract_ranked_list
from medllm.eval.loaders import TaskDataError, load_examples
from medllm.eval.spec import TaskSpecError, load_spec
from tests.eval.conftest import write_jsonl

CH = ["aspirin", "heparin", "warfarin", "no treatment"]


@pytest.mark.parametrize("out,expected", [
    ("B", 1), ("(C)", 2), ("D. no treatment", 3), ("The correct answer is C.", 2), ("Answer: B", 1),
    ("Start heparin now.", 1), ("A patient like this needs heparin", 1), ("A or B", None), ("", None),
    ("aspirin or heparin", None),
])
def test_extract_letter(out, expected):
    assert extract_letter(out, CH) == expected


@pytest.mark.parametrize("out,expected", [
    ("Yes.", "yes"), ("no, because", "no"), ("It is not known; the answer is maybe", "maybe"),
    ("I don't know", None), ("Nothing suggests a benefit", None), ("yes or no", "yes"),
    ("The data are inconclusive, so maybe.", "maybe"),
])
def test_extract_label_whole_words(out, expected):
    assert extract_label(out, ["yes", "no", "maybe"]) == expected


def test_ranked_list():
    assert extract_ranked_list("1. A\n2) B.\n- C", 2) == ["A", "B"]


def test_malformed_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "medqa.jsonl"
    p.write_text('{"question": "q", "options": {"A": "a", "B": "b"}, "answer_idx": "A"}\n{"question": oops}\n')
    with pytest.raises(TaskDataError, match=rf"{p}:2: invalid JSON"):
        load_examples(load_spec("medqa"), p)


def test_mislabelled_pubmedqa_names_field(tmp_path):
    p = write_jsonl(tmp_path / "pq.jsonl", [
        {"pubid": "1", "QUESTION": "q", "CONTEXTS": ["c"], "final_decision": "yes"},
        {"pubid": "2", "QUESTION": "q", "CONTEXTS": ["c"], "final_decision": "probably"},
    ])
    with pytest.raises(TaskDataError, match=rf"{p}:2: field 'final_decision': label 'probably' is not one of"):
        load_examples(load_spec("pubmedqa"), p)


def test_medmcqa_cop_out_of_range(tmp_path):
    p = write_jsonl(tmp_path / "dev.jsonl", [
        {"question": "q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 0}])
    with pytest.raises(TaskDataError, match=rf"{p}:1: field 'cop': must be an integer 1..4"):
        load_examples(load_spec("medmcqa"), p)


def test_medqa_answer_letter_outside_options(tmp_path):
    p = write_jsonl(tmp_path / "m.jsonl", [
        {"question": "q", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "E"}])
    with pytest.raises(TaskDataError, match=rf"{p}:1: field 'answer': answer 'E' is not a letter A-D"):
        load_examples(load_spec("medqa"), p)


def test_mmlu_wrong_column_count(tmp_path):
    p = tmp_path / "anatomy_test.csv"
    p.write_text("q1,a,b,c,d,A\nq2,a,b,c,B\n")
    with pytest.raises(TaskDataError, match=rf"{p}:2: expected 6 columns"):
        load_examples(load_spec("mmlu_medical"), p)


def test_conll_bad_tag(tmp_path):
    p = tmp_path / "x.conll"
    p.write_text("Aspirin B-Chem\nworks DRUG\n")
    with pytest.raises(TaskDataError, match=rf"{p}:2: field 'tag': 'DRUG' is not a BIO tag"):
        load_examples(load_spec("ner_conll"), p)


def test_missing_field_names_mapped_column(tmp_path):
    p = write_jsonl(tmp_path / "nli.jsonl", [{"sentence1": "a", "gold_label": "neutral"}])
    with pytest.raises(TaskDataError, match=rf"{p}:1: field 'sentence2': missing"):
        load_examples(load_spec("mednli"), p)


def test_user_task_yaml_without_code(tmp_path):
    data = write_jsonl(tmp_path / "triage.jsonl", [{"note": "chest pain", "level": "urgent"},
                                                   {"note": "mild cold", "level": "routine"}])
    spec_file = tmp_path / "triage.yaml"
    spec_file.write_text(
        "name: triage\ntype: classification\nformat: jsonl\nfields: {text: note, label: level}\n"
        "labels: [urgent, routine]\ngenerate:\n  prompt: 'Triage: {text}. Options: {labels_text}.'\n"
        "metrics: [acc, macro_f1]\n")
    spec = load_spec(spec_file)
    exs = load_examples(spec, data)
    assert [e["label"] for e in exs] == ["urgent", "routine"] and exs[0]["text"] == "chest pain"


def test_bad_task_yaml_names_field(tmp_path):
    spec_file = tmp_path / "bad.yaml"
    spec_file.write_text("name: x\ntype: qa_magic\ngenerate: {prompt: hi}\nunknown_key: 1\n")
    with pytest.raises(TaskSpecError) as err:
        load_spec(spec_file)
    assert f"{spec_file}: field 'type'" in str(err.value) and "field 'unknown_key'" in str(err.value)


def test_cli_reports_bad_file_without_traceback(tmp_path):
    from typer.testing import CliRunner

    from medllm.cli.main import app

    p = tmp_path / "pq.jsonl"
    p.write_text(json.dumps({"pubid": "1", "QUESTION": "q", "CONTEXTS": "not a list", "final_decision": "yes"}) + "\n")
    res = CliRunner().invoke(app, ["eval", "run", "tiny-llama", "--task", "pubmedqa", "--path", str(p),
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    text = " ".join(res.output.split())  # rich wraps long lines
    assert "pq.jsonl:1: field 'CONTEXTS'" in text and "Traceback" not in text


def test_limit_first_or_seeded_random_sample(tmp_path):
    """A label-sorted file (as PubMedQA's test file is) gives one class under first-N;
    ``sample="random"`` draws a seeded subset that keeps file order."""
    rows = [{"pubid": str(i), "QUESTION": f"q{i}", "CONTEXTS": ["c"], "final_decision": lab}
            for i, lab in enumerate(["yes"] * 30 + ["no"] * 20 + ["maybe"] * 10)]
    path = write_jsonl(tmp_path / "sorted.jsonl", rows)
    spec = load_spec("pubmedqa")
    first = load_examples(spec, path, limit=12)
    assert [e["id"] for e in first] == [str(i) for i in range(12)]
    assert {e["label"] for e in first} == {"yes"}
    a = load_examples(spec, path, limit=12, sample="random", seed=7)
    b = load_examples(spec, path, limit=12, sample="random", seed=7)
    c = load_examples(spec, path, limit=12, sample="random", seed=8)
    ids = [int(e["id"]) for e in a]
    assert ids == [int(e["id"]) for e in b] and ids == sorted(ids) and len(set(ids)) == 12
    assert ids != [int(e["id"]) for e in c]
    assert len({e["label"] for e in a}) > 1
    assert load_examples(spec, path, limit=100, sample="random") == load_examples(spec, path)
