"""Benchmarks as released: tiny fixture files written here in the public formats (HoC with
empty label sets, DDI-2013 XML and BLURB masked TSV, BLURB TSV for classification), and
clear errors naming file, line and expected fields for what a loader cannot read."""
from __future__ import annotations

import pytest

from tests.eval.conftest import write_jsonl


def _load(task, path):
    from medllm.eval.loaders import load_examples
    from medllm.eval.spec import load_spec

    return load_examples(load_spec(task), path)


def _run(f, task, path, tmp_path):
    from medllm.eval.runner import run_task
    from medllm.eval.spec import load_spec

    return run_task(f, load_spec(task), "generate", 0, path, None, tmp_path / "o", max_new_tokens=16, seed=1)


# ------------------------------------------------------------------ HoC
def test_hoc_empty_label_sets_load_and_score(scripted, tmp_path):
    p = write_jsonl(tmp_path / "hoc.jsonl", [
        {"id": "1", "text": "H1", "labels": ["inducing angiogenesis"]},
        {"id": "2", "text": "H2", "labels": []},                 # no hallmark: a valid gold answer
        {"id": "3", "text": "H3", "labels": []},
        {"id": "4", "text": "H4", "labels": "resisting cell death"},
    ])
    ex = _load("hoc", p)
    assert [e["labels"] for e in ex][1:3] == [[], []]
    f = scripted(answers={"H1": "inducing angiogenesis", "H2": "none", "H3": "resisting cell death",
                          "H4": "resisting cell death"})
    res = _run(f, "hoc", p, tmp_path)
    m = {k: v["value"] for k, v in res["metrics"].items()}
    assert m["exact_match"] == 0.75                              # "none" on an empty gold is right
    # per label: angiogenesis F1 1; cell death P=1/2 R=1 -> 2/3; empty docs add no true label
    assert m["labelwise_macro_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1))  # TP 2, FP 1, FN 0


def test_hoc_blurb_tsv_label_vectors(tmp_path):
    from medllm.eval.spec import load_spec

    labels = load_spec("hoc").labels
    vec = ",".join(f"{i}_{int(i in (0, 4))}" for i in range(10))
    p = tmp_path / "test.tsv"
    p.write_text(f"index\tsentence\tlabels\nd1\tAbstract one.\t{vec}\nd2\tAbstract two.\t"
                 + ",".join(f"{i}_0" for i in range(10)) + "\nd3\tAbstract three.\t\n")
    ex = _load("hoc", p)
    assert ex[0]["labels"] == [labels[0], labels[4]] and ex[1]["labels"] == [] and ex[2]["labels"] == []
    assert ex[0]["text"] == "Abstract one." and ex[0]["id"] == "d1"


# ------------------------------------------------------------------ DDI-2013
DDI_XML = """<?xml version="1.0" encoding="UTF-8"?>
<document id="DDI-DrugBank.d1">
  <sentence id="DDI-DrugBank.d1.s0" text="Aspirin may increase the effect of warfarin.">
    <entity id="DDI-DrugBank.d1.s0.e0" charOffset="0-6" type="drug" text="Aspirin"/>
    <entity id="DDI-DrugBank.d1.s0.e1" charOffset="35-42" type="drug" text="warfarin"/>
    <pair id="DDI-DrugBank.d1.s0.p0" e1="DDI-DrugBank.d1.s0.e0" e2="DDI-DrugBank.d1.s0.e1" ddi="true" type="effect"/>
  </sentence>
  <sentence id="DDI-DrugBank.d1.s1" text="Cimetidine, ranitidine and digoxin were studied.">
    <entity id="DDI-DrugBank.d1.s1.e0" charOffset="0-9" type="drug" text="Cimetidine"/>
    <entity id="DDI-DrugBank.d1.s1.e1" charOffset="12-21" type="drug" text="ranitidine"/>
    <entity id="DDI-DrugBank.d1.s1.e2" charOffset="27-33" type="drug" text="digoxin"/>
    <pair id="DDI-DrugBank.d1.s1.p0" e1="DDI-DrugBank.d1.s1.e0" e2="DDI-DrugBank.d1.s1.e1" ddi="false"/>
    <pair id="DDI-DrugBank.d1.s1.p1" e1="DDI-DrugBank.d1.s1.e0" e2="DDI-DrugBank.d1.s1.e2" ddi="true" type="mechanism"/>
  </sentence>
  <sentence id="DDI-DrugBank.d1.s2" text="No drugs here."/>
</document>
"""


def test_ddi_official_xml_corpus_folder(tmp_path):
    folder = tmp_path / "DDICorpus" / "Test" / "DrugBank"
    folder.mkdir(parents=True)
    (folder / "d1.xml").write_text(DDI_XML)
    ex = _load("ddi_relation", tmp_path / "DDICorpus")
    assert [e["label"] for e in ex] == ["effect", "false", "mechanism"]
    assert ex[0]["text"] == "@DRUG$ may increase the effect of @DRUG$."
    assert ex[2]["text"] == "@DRUG$, ranitidine and @DRUG$ were studied."
    assert ex[0]["id"] == "DDI-DrugBank.d1.s0.p0"


def test_ddi_blurb_masked_tsv_with_and_without_header(scripted, tmp_path):
    rows = ["s1\t@DRUG$ raises @DRUG$ levels.\tDDI-mechanism", "s2\tAvoid @DRUG$ with @DRUG$.\tDDI-advise",
            "s3\t@DRUG$ and @DRUG$ were given.\tDDI-false", "s4\t@DRUG$ interacts with @DRUG$.\tDDI-int"]
    with_header = tmp_path / "test.tsv"
    with_header.write_text("index\tsentence\tlabel\n" + "\n".join(rows) + "\n")
    bare = tmp_path / "train.tsv"
    bare.write_text("\n".join(r.split("\t", 1)[1] for r in rows) + "\n")
    for p in (with_header, bare):
        assert [e["label"] for e in _load("ddi_relation", p)] == ["mechanism", "advise", "false", "int"]
    f = scripted(answers={"raises": "mechanism", "Avoid": "advise", "were given": "false", "interacts": "effect"})
    res = _run(f, "ddi_relation", with_header, tmp_path)
    assert res["metrics"]["acc"]["value"] == 0.75


def test_classification_blurb_tsv(tmp_path):
    p = tmp_path / "mt.tsv"
    p.write_text("transcription\tmedical_specialty\nECG shows ST elevation.\tCardiology\n")
    ex = _load("mtsamples", p)
    assert ex[0]["text"] == "ECG shows ST elevation." and ex[0]["label"] == "Cardiology"


# ------------------------------------------------------------------ what cannot be read, said clearly
def test_bad_ddi_xml_names_file_line_and_expected_elements(tmp_path):
    from medllm.eval.loaders import TaskDataError

    p = tmp_path / "bad.xml"
    p.write_text('<document>\n<sentence id="s0" text="x">\n</document>\n')
    with pytest.raises(TaskDataError, match=r"bad\.xml:3: invalid XML.*<sentence text=.*<pair"):
        _load("ddi_relation", p)
    p.write_text('<document><sentence id="s0" text="a b"><entity id="e0" charOffset="0-0"/>'
                 '<pair id="p0" e1="e0" e2="e9" ddi="true"/></sentence></document>')
    with pytest.raises(TaskDataError, match=r"bad\.xml: sentence 's0' pair 'p0': field 'pair': needs e1, e2"):
        _load("ddi_relation", p)


def test_bad_tsv_names_file_line_and_expected_columns(tmp_path):
    from medllm.eval.loaders import TaskDataError

    p = tmp_path / "ddi.tsv"
    p.write_text("index\tsentence\tlabel\ns1\t@DRUG$ and @DRUG$\tDDI-false\ns2\tonly two\n")
    with pytest.raises(TaskDataError, match=r"ddi\.tsv:3: expected 3 tab-separated columns \(index, sentence, label\)"):
        _load("ddi_relation", p)
    p.write_text("a\tb\tc\td\n")
    with pytest.raises(TaskDataError, match=r"ddi\.tsv:1: expected 'sentence<TAB>label'"):
        _load("ddi_relation", p)
    p.write_text("s1\t@DRUG$ x @DRUG$\tDDI-synergy\n")
    with pytest.raises(TaskDataError, match=r"ddi\.tsv:1: field 'label': label 'synergy' is not one of"):
        _load("ddi_relation", p)


def test_list_tasks_names_formats_in_80_columns():
    from typer.testing import CliRunner

    from medllm.cli.main import app

    res = CliRunner().invoke(app, ["eval", "list-tasks"], env={"COLUMNS": "80", "TERM": "dumb"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(x) for x in lines) <= 80
    assert "DDI-2013 XML corpus folder" in res.output and "BLURB masked TSV" in res.output
    assert "MedQA JSONL as released" in res.output and "an empty set / 'none' is valid" in res.output
