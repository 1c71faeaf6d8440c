"""Every input format and file type loads into the canonical record kinds, detected without hints."""
from __future__ import annotations

import json

import pytest

from medllm.data import DataError, load_source


def test_alpaca_with_system_and_history(jsonl):
    p = jsonl("a.jsonl", [{"instruction": "Define fever.", "input": "Adult patient.", "output": "A temperature of 38 C or more.",
                           "system": "Be brief.", "history": [["Hi", "Hello, how can I help?"]]}])
    got = load_source(p)
    assert got.kind == "sft" and got.formats[str(p)] == "alpaca"
    msgs = got.dataset[0]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant"]
    assert msgs[3]["content"] == "Define fever.\n\nAdult patient."
    assert got.dataset[0]["source"] == "a"


def test_sharegpt_openai_and_completion(jsonl):
    sg = load_source(jsonl("s.jsonl", [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]))
    oa = load_source(jsonl("o.jsonl", [{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                                                     {"role": "assistant", "content": "a"}]}]))
    pc = load_source(jsonl("c.jsonl", [{"prompt": "2+2?", "completion": "4"}]))
    assert sg.dataset[0]["messages"] == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert [m["role"] for m in oa.dataset[0]["messages"]] == ["system", "user", "assistant"]
    assert pc.kind == "sft" and pc.dataset[0]["messages"][1]["content"] == "4"


def test_plain_text_field_and_txt_file(tmp_path, jsonl):
    t = load_source(jsonl("t.jsonl", [{"text": "Aspirin is an antiplatelet."}]))
    assert t.kind == "text" and t.dataset[0]["text"] == "Aspirin is an antiplatelet."
    (tmp_path / "notes.txt").write_text("First paragraph\nstill first.\n\nSecond paragraph.\n")
    txt = load_source(tmp_path / "notes.txt")
    assert txt.dataset["text"] == ["First paragraph\nstill first.", "Second paragraph."]


def test_preference_strings_and_message_lists(jsonl):
    p = jsonl("p.jsonl", [
        {"prompt": "Is smoking harmful?", "chosen": "Yes.", "rejected": "No."},
        {"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "gpt", "value": "good"},
         "rejected": {"from": "gpt", "value": "bad"}},
        {"prompt": [{"role": "user", "content": "q2"}], "chosen": [{"role": "user", "content": "q2"},
                                                                   {"role": "assistant", "content": "c"}],
         "rejected": [{"role": "assistant", "content": "r"}]},
    ])
    got = load_source(p)
    assert got.kind == "preference"
    assert [r["chosen"][0]["content"] for r in got.dataset] == ["Yes.", "good", "c"]
    assert all(r["prompt"][-1]["role"] == "user" for r in got.dataset)


@pytest.mark.parametrize("pairs,expected", [("adjacent", [("d", "c"), ("c", "b"), ("b", "a")]),
                                            ("all", [("d", "c"), ("d", "b"), ("d", "a"), ("c", "b"), ("c", "a"), ("b", "a")])])
def test_ranked_lists_expand_to_pairs(jsonl, pairs, expected):
    p = jsonl("r.jsonl", [{"prompt": "q", "responses": ["d", "c", "b", "a"]}])  # best -> worst
    got = load_source(p, ranked_pairs=pairs)
    assert got.kind == "preference"
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in got.dataset] == expected


def test_csv_parquet_json_array_and_folder(tmp_path):
    import pandas as pd

    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(3)]
    folder = tmp_path / "mixed"
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "one.csv", index=False)
    pd.DataFrame(rows).to_parquet(folder / "two.parquet")
    (folder / "three.json").write_text(json.dumps(rows, indent=2))
    (folder / "LICENSE.txt").write_text("not data")
    got = load_source(folder)
    assert len(got.dataset) == 9 and set(got.formats.values()) == {"alpaca"}
    assert not any("LICENSE" in f for f in got.files)


def test_column_mapping_and_format_override(jsonl):
    p = jsonl("odd.jsonl", [{"question": "What is BMI?", "answer_text": "Weight over height squared."}])
    with pytest.raises(DataError):
        load_source(p)
    got = load_source(p, columns={"question": "instruction", "answer_text": "output"})
    assert got.dataset[0]["messages"][1]["content"] == "Weight over height squared."
    forced = load_source(jsonl("f.jsonl", [{"prompt": "p", "completion": "c", "text": "t"}]), format="text")
    assert forced.kind == "text" and forced.dataset[0]["text"] == "t"


def test_headerless_mmlu_style_csv_is_mcq(tmp_path):
    (tmp_path / "m.csv").write_text('Which organ makes insulin?,Liver,Pancreas,Kidney,Spleen,B\n"A, B?",w,x,y,z,D\n')
    got = load_source(tmp_path / "m.csv")
    assert got.kind == "mcq" and got.dataset[0]["answer"] == 1 and got.dataset[1]["question"] == "A, B?"


def test_max_samples_and_builtin(jsonl):
    got = load_source(jsonl("t.jsonl", [{"text": f"doc {i}"} for i in range(10)]), max_samples=4)
    assert len(got.dataset) == 4
    b = load_source("builtin:demo/sft", max_samples=5)
    assert b.kind == "sft" and len(b.dataset) == 5


@pytest.mark.shared_data
@pytest.mark.parametrize("rel,kind,fmt", [
    ("instruct/chatdoctor/genmedgpt5k_chatdoctor5k.json", "sft", "alpaca"),
    ("instruct/medalpaca", "sft", "alpaca"),
    ("instruct/medicalgpt", "sft", "sharegpt"),
    ("preference/llamafactory_dpo_en_demo.json", "preference", "preference"),
    ("preference/medicalgpt_dpo_zh_500.jsonl", "preference", "preference"),
    ("mmlu_med/anatomy_test.csv", "mcq", "mcq"),
])
def test_shared_data_loads_without_hints(shared_data, rel, kind, fmt):
    got = load_source(shared_data / rel)
    assert got.kind == kind and set(got.formats.values()) == {fmt}
    assert len(got.dataset) > 100 and not got.problems


@pytest.mark.shared_data
def test_shared_plain_text_with_column_mapping(shared_data):
    got = load_source(shared_data / "summarization/meqsum.jsonl", columns={"CHQ": "text"}, kind="text")
    assert got.kind == "text" and len(got.dataset) == 1000
