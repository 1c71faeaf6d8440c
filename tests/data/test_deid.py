"""De-identification: recall on the synthetic corpus, consistency, audit privacy, offline operation."""
from __future__ import annotations

import re
import socket

import pytest

from medllm.data.deid.engine import Deidentifier
from medllm.data.deid.evaluate import evaluate_deid
from medllm.data.deid.synth import synth_corpus

HIGH_RECALL = ("DATE", "PHONE", "FAX", "EMAIL", "SSN", "MRN", "URL", "IP", "ACCOUNT", "LICENSE", "DEVICE",
               "HEALTH_PLAN", "VEHICLE", "AGE", "ZIP")


@pytest.fixture(scope="module")
def deid():
    return Deidentifier()


def test_deid_eval_on_500_notes_meets_targets(deid):
    report = evaluate_deid(synth_corpus(500, seed=11), deid)
    per = report["per_type"]
    for e in HIGH_RECALL:
        assert per[e]["gold"] > 30 and per[e]["recall"] >= 0.99, (e, per[e], report["missed_examples"].get(e))
    assert per["NAME"]["recall"] >= 0.90, report["missed_examples"].get("NAME")
    assert report["overall"]["precision"] >= 0.9


def test_no_identifier_survives_and_dates_shift_consistently(deid):
    text = ("Patient: Rosalind Whitfield, MRN: 44812093. Admitted 03/14/2021 and discharged 03/20/2021. "
            "Mrs. Whitfield can be reached at (415) 555-2671 or rosalind.w@gmail.com. SSN 212-44-9087. "
            "She is 94 years old. Fax: 415-555-9911.")
    new, audit = deid.deidentify(text, doc_key="patient-7")
    for secret in ("Rosalind", "Whitfield", "44812093", "03/14/2021", "555-2671", "rosalind.w@gmail.com",
                   "212-44-9087", "94 years", "555-9911"):
        assert secret not in new, (secret, new)
    assert "90+ years old" in new
    import datetime as dt

    d1, d2 = [dt.datetime.strptime(d, "%m/%d/%Y") for d in re.findall(r"\d{2}/\d{2}/\d{4}", new)]
    assert (d2 - d1).days == 6  # the interval survives the shift
    again, _ = deid.deidentify(text, doc_key="patient-7")
    other, _ = deid.deidentify(text, doc_key="patient-8")
    assert again == new and other != new  # consistent per patient, different across patients
    assert all("original" not in a for a in audit)
    for a in audit:  # audit spans point at the replacement text in the output
        assert 0 <= a["start"] < a["end"] <= len(new)


def test_mask_mode_and_originals_only_on_request():
    d = Deidentifier(mode="mask", keep_originals=True)
    new, audit = d.deidentify("Seen by Dr. Abernathy on March 3, 2020; call 212-555-0199.", "x")
    assert "[NAME]" in new and "[PHONE]" in new and "2020" in new and "March" not in new
    assert {a["original"] for a in audit} >= {"Abernathy", "212-555-0199"}


def test_no_network_access(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("de-identification tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from medllm.data.deid.recognizers import _tld_extract

    _tld_extract.cache_clear()
    new, audit = Deidentifier().deidentify("Write to someone.new@hospital-mail.co.uk or see https://records.example.com/x", "n")
    assert {a["entity"] for a in audit} == {"EMAIL", "URL"}


def test_deidentify_dataset_keeps_schema():
    from datasets import Dataset

    from medllm.config.data import DeidConfig
    from medllm.data.deid.engine import deidentify_dataset
    from medllm.data.loader import features_for

    ds = Dataset.from_list([{"messages": [{"role": "user", "content": "I am John Smith, born 04/02/1961."},
                                          {"role": "assistant", "content": "Thanks John."}], "source": "s"}],
                           features=features_for("sft"))
    new, audit, counts = deidentify_dataset(ds, DeidConfig(enabled=True))
    assert new.features == ds.features
    assert "John" not in str(new[0]["messages"]) and counts["NAME"] >= 2 and counts["DATE"] == 1


def test_dialogue_and_eponyms_are_not_identifiers(deid):
    """False positives seen on real doctor-patient dialogues: speaker labels, eponyms, run-together sentences."""
    text = ("Doctor: You may be suffering from Sick Sinus Syndrome. The first test is a urinalysis.Patient: Okay, doctor. "
            "What next?Doctor: For Wilson disease, we check copper. Patient: Yeah, I try to eat well.")
    assert deid.analyze(text) == []


# --- hand-written gold notes (src/medllm/data/deid/gold): the targets of issue 13 ---------------------------

@pytest.fixture(scope="module")
def gold_reports(deid):
    from medllm.data.deid.gold import load_gold

    return {split: evaluate_deid(load_gold(split=split), deid, max_examples=None) for split in ("dev", "heldout", "fresh", "fresh2")}


@pytest.mark.parametrize("split", ["dev", "heldout"])
def test_gold_notes_meet_recall_and_keep_every_clinical_term(gold_reports, split):
    report = gold_reports[split]
    assert report["overall"]["recall"] >= 0.98, report["missed_examples"]
    assert report["per_type"]["NAME"]["recall"] >= 0.95, report["missed_examples"].get("NAME")
    assert report["overall"]["precision"] >= 0.95, report["false_positive_examples"]
    assert report["clinical_terms"]["checked"] > 50 and report["clinical_terms"]["removed"] == 0, \
        report["clinical_terms"]["removed_list"]


def test_fresh_split_is_varied_and_holds_its_floor(gold_reports):
    """The 'fresh' notes were written after the others and never tuned on; this pins today's level
    (0.962 overall, 1.000 names) with a small margin so a regression shows."""
    from medllm.data.deid.gold import load_gold

    notes = load_gold(split="fresh")
    assert len(notes) >= 15 and len({n["genre"] for n in notes}) >= 6
    report = gold_reports["fresh"]
    assert report["overall"]["recall"] >= 0.95, report["missed_examples"]
    assert report["per_type"]["NAME"]["recall"] >= 0.95, report["missed_examples"].get("NAME")


def test_fresh2_split_holds_its_floor(gold_reports):
    """'fresh2' was written after this round's tuning and scored once (0.897 overall, 0.952 names):
    below the targets, pinned so it can only improve; see docs/privacy.md for its misses."""
    report = gold_reports["fresh2"]
    assert report["notes"] >= 10
    assert report["overall"]["recall"] >= 0.88, report["missed_examples"]
    assert report["per_type"]["NAME"]["recall"] >= 0.93, report["missed_examples"].get("NAME")


@pytest.mark.parametrize("split", ["fresh", "fresh2"])
@pytest.mark.xfail(strict=True, reason="open: 'Modic type 1', 'Deauville 2', 'Lugano' and the brand 'Jardiance' taken "
                                       "for names, 'co-careldopa 12.5/50' for a date (never-tuned splits, docs/privacy.md)")
def test_fresh_splits_keep_every_clinical_term(gold_reports, split):
    assert gold_reports[split]["clinical_terms"]["removed"] == 0


def test_gold_loader_refuses_unannotated_repeat_but_not_inside_a_clinical_term(tmp_path):
    from medllm.data.deid.gold import GoldError, load_gold

    ok = tmp_path / "ok.txt"
    ok.write_text("### a | radiology | fresh\nReferring: Dr. [[NAME:Wells]]. {{Wells 2}}.\n", encoding="utf-8")
    note = load_gold(ok)[0]
    assert note["text"] == "Referring: Dr. Wells. Wells 2." and note["split"] == "fresh"
    bad = tmp_path / "bad.txt"
    bad.write_text("### b | progress | dev\nWife [[NAME:Ngozi]] visited. Ngozi called.\n", encoding="utf-8")
    with pytest.raises(GoldError, match="Ngozi"):
        load_gold(bad)


def test_general_formats_from_issue_13(deid):
    """Formats named in the issue, in sentences that are not in the gold notes."""
    text = ("Tomasz Wiśniewski, ninety-four, seen 03-Feb-2025; review on 21/05. Patient is 96 y.o. "
            "Health plan QRZ-5512-0981; acct 0000571123; DL no. NY 40917733. Tel 0161 496 0018. "
            "Son, Hope Adebayo-Lewis, visits; counselor Ingrid Berg called. Admitted to Fernhill Health System. "
            "Berg balance 44/56, Wells 2, GCS 7, St John's wort stopped, Parkinson's disease on Sinemet 25/100.")
    found = {text[s.start:s.end] for s in deid.analyze(text)}
    for secret in ("ninety-four", "03-Feb-2025", "21/05", "96", "QRZ-5512-0981", "0000571123", "NY 40917733",
                   "0161 496 0018", "Hope Adebayo-Lewis", "Ingrid Berg", "Fernhill Health System"):
        assert any(secret in f for f in found), (secret, found)
    new, _ = deid.deidentify(text, "g")
    for term in ("Berg balance", "Wells 2", "GCS 7", "St John's wort", "Parkinson's disease", "Sinemet 25/100"):
        assert term in new, (term, new)
