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


def test_emails_on_intranet_and_reserved_domains_are_removed(deid):
    """An address is an identifier whatever its suffix: hospital intranets use .local/.lan/.corp."""
    text = "cc j.okafor@stmarys.local, ward7b@trust.lan and kay.rob94@mailbox.example; dose 2.5 mg."
    found = {text[s.start:s.end] for s in deid.analyze(text) if s.entity == "EMAIL"}
    assert found == {"j.okafor@stmarys.local", "ward7b@trust.lan", "kay.rob94@mailbox.example"}, found


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

    return {split: evaluate_deid(load_gold(split=split), deid, max_examples=None)
            for split in ("dev", "heldout", "fresh", "fresh2", "fresh3", "fresh4", "fresh5", "fresh6", "fresh7")}


@pytest.mark.parametrize("split", ["dev", "heldout", "fresh", "fresh2"])
def test_gold_notes_meet_recall_and_keep_every_clinical_term(gold_reports, split):
    report = gold_reports[split]
    assert report["overall"]["recall"] >= 0.98, report["missed_examples"]
    assert report["per_type"]["NAME"]["recall"] >= 0.95, report["missed_examples"].get("NAME")
    assert report["overall"]["precision"] >= 0.95, report["false_positive_examples"]
    assert report["clinical_terms"]["checked"] > 30 and report["clinical_terms"]["removed"] == 0, \
        report["clinical_terms"]["removed_list"]


def test_fresh_splits_are_varied():
    from medllm.data.deid.gold import load_gold

    for split, n in (("fresh", 15), ("fresh3", 12), ("fresh4", 15), ("fresh5", 15)):
        notes = load_gold(split=split)
        assert len(notes) >= n and len({x["genre"] for x in notes}) >= 6, split


def test_fresh5_blind_split_holds_its_floor(gold_reports):
    """'fresh5' is the blind split: written after round 4 by an author who neither read nor ran the
    recognizers, never tuned on (docs/privacy.md). Scored 0.863 overall, 0.857 names, precision 0.900, 4 of 180
    terms removed with round 5, and 0.886 / 0.857 / 0.918 / 3 removed with round 6 (still never tuned on) — below
    the issue's targets, pinned at the round-6 level so a change cannot make blind notes worse."""
    report = gold_reports["fresh5"]
    assert report["overall"]["recall"] >= 0.88, report["missed_examples"]
    assert report["per_type"]["NAME"]["recall"] >= 0.85, report["missed_examples"].get("NAME")
    assert report["overall"]["precision"] >= 0.91, report["false_positive_examples"]
    assert report["clinical_terms"]["removed"] <= 3, report["clinical_terms"]["removed_list"]


def test_fresh6_after_round6_holds_its_level(gold_reports):
    """'fresh6' (16 notes, 16 genres, 12 countries, 357 identifier spans, 265 must-survive terms) was written blind
    and scored once with round 5: recall 0.832, names 0.841, precision 0.872, 7 of 265 clinical terms removed. Its
    misses and false positives then guided round 6 (as classes, docs/privacy.md), so it is no longer blind. Pinned
    as a floor just under the level round 6 reached (recall 1.000, names 1.000, precision 0.997, 0 removed)."""
    report = gold_reports["fresh6"]
    assert report["notes"] == 16
    assert report["overall"]["recall"] >= 0.99, report["missed_examples"]
    assert report["per_type"]["NAME"]["recall"] >= 0.98, report["missed_examples"].get("NAME")
    assert report["overall"]["precision"] >= 0.98, report["false_positive_examples"]
    assert report["clinical_terms"]["checked"] >= 260 and report["clinical_terms"]["removed"] == 0, \
        report["clinical_terms"]["removed_list"]


def test_fresh7_blind_split_holds_its_floor(gold_reports):
    """'fresh7' (16 notes, 16 genres, 15 countries, 496 identifier spans, 322 must-survive terms) was written after
    round 6 by an author who neither read nor ran the recognizers, and scored once: recall 0.821, names 0.856,
    precision 0.910, 11 of 322 clinical terms removed — the fifth blind split in a row at 0.82-0.89 after a tuning
    round (docs/privacy.md). Never tuned on; pinned as a floor so that no change makes blind notes worse."""
    report = gold_reports["fresh7"]
    assert report["notes"] == 16
    assert report["overall"]["recall"] >= 0.82, report["missed_examples"]
    assert report["per_type"]["NAME"]["recall"] >= 0.85, report["missed_examples"].get("NAME")
    assert report["overall"]["precision"] >= 0.90, report["false_positive_examples"]
    assert report["clinical_terms"]["removed"] <= 11, report["clinical_terms"]["removed_list"]


def test_gold_loader_scores_a_split_while_another_has_a_slip(tmp_path):
    """A blind split being written may hold an annotation slip; the other splits still load, the slip is still
    refused for its own split and for 'all'."""
    from medllm.data.deid.gold import GoldError, load_gold

    f = tmp_path / "two.txt"
    f.write_text("### a | progress | dev\nSeen by Dr. [[NAME:Okafor]].\n"
                 "### b | progress | fresh9\nWife [[NAME:Ngozi]] visited. Ngozi called.\n", encoding="utf-8")
    assert [n["id"] for n in load_gold(f, split="dev")] == ["a"]
    for split in ("fresh9", "all", None):
        with pytest.raises(GoldError, match="Ngozi"):
            load_gold(f, split=split)


def test_fresh3_after_round4_meets_the_targets(gold_reports):
    """'fresh3' was written after round 3 and scored once blind (0.924 overall, 0.960 names, 74 of 76 clinical
    terms kept); its misses then guided round 4, so it is no longer blind. Pinned at the targets of issue 13."""
    report = gold_reports["fresh3"]
    assert report["overall"]["recall"] >= 0.98, report["missed_examples"]
    assert report["per_type"]["NAME"]["recall"] >= 0.95, report["missed_examples"].get("NAME")
    assert report["overall"]["precision"] >= 0.95, report["false_positive_examples"]


def test_fresh3_keeps_every_clinical_term(gold_reports):
    """Was a strict xfail ('Klebsiella', 'Abbey pain scale' taken for names) until round 4."""
    assert gold_reports["fresh3"]["clinical_terms"]["removed"] == 0, gold_reports["fresh3"]["clinical_terms"]["removed_list"]


def test_fresh4_after_round5_holds_its_level(gold_reports):
    """'fresh4' (15 notes, 10 countries) was scored blind after round 3 (recall 0.753, precision 0.830, 10 of 176
    clinical terms removed) and after round 4 (0.772 / 0.841 / 9 removed); its misses then guided round 5, so it
    is no longer blind. Pinned as a floor at the level round 5 reached (recall 1.000, names 1.000, precision 0.991)."""
    report = gold_reports["fresh4"]
    assert report["overall"]["recall"] >= 0.99, report["missed_examples"]
    assert report["per_type"]["NAME"]["recall"] >= 0.98, report["missed_examples"].get("NAME")
    assert report["overall"]["precision"] >= 0.98, report["false_positive_examples"]
    assert report["clinical_terms"]["checked"] >= 170 and report["clinical_terms"]["removed"] == 0, \
        report["clinical_terms"]["removed_list"]


def test_all_gold_splits_together(deid):
    """``deid-eval --gold builtin --split all`` scores every hand-written note at once. Pinned on the splits that
    guided the rules (fresh6 since round 6); a newer blind split is scored on its own first."""
    from medllm.data.deid.gold import load_gold

    known = ("dev", "heldout", "fresh", "fresh2", "fresh3", "fresh4", "fresh6")
    # split by split: a blind split still being written (with a slip the loader refuses) must not block these
    notes = [n for split in known for n in load_gold(split=split)]
    assert {n["split"] for n in notes} == set(known)
    report = evaluate_deid(notes, deid, max_examples=None)
    assert report["notes"] == len(notes) >= 134
    assert report["overall"]["recall"] >= 0.98 and report["overall"]["precision"] >= 0.95, report["missed_examples"]
    assert report["clinical_terms"]["removed"] == 0, report["clinical_terms"]["removed_list"]


def test_round3_formats_in_new_sentences(deid):
    """The general rules of round 3, on sentences that are in no gold note."""
    text = ("Started co-amilofruse 5/40 and Madopar 12.5/50; seen 3.4/25 by nobody. Deauville 4, Bosniak II, "
            "Jardiance 10 mg, Lugano criteria. Labs at Quest. Patient ID in chart: QX-0098812. "
            "Acc PLM7730021. Staff #88213 took the call. Plan member K440 9921 3378. Ring 01632 960 733. "
            "Plate VX 22 LMP. Lives at Unit 9, 14 Birch Parade, Ballarat VIC 3350.")
    found = {text[s.start:s.end] for s in deid.analyze(text)}
    for secret in ("QX-0098812", "PLM7730021", "88213", "K440 9921 3378", "01632 960 733", "VX 22 LMP",
                   "Unit 9, 14 Birch Parade", "Ballarat", "3350"):
        assert any(secret in f for f in found), (secret, found)
    for term in ("5/40", "12.5/50", "Deauville", "Bosniak", "Jardiance", "Lugano", "Quest"):
        assert not any(term in f for f in found), (term, found)


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


def test_round4_formats_in_new_sentences(deid):
    """The classes of round 4 (docs/privacy.md), on sentences that are in no gold note."""
    text = ("NHI: PQR4471; NHS no. 485 777 3456; CHI number 1203891234; OHIP 1234-567-890-AB; Medicare 2951 44837 2. "
            "Accession # XR-2291-0033, acc no 55120934. Subscriber ID BCX 2281 5510, policy no. HLT 7790 2231. "
            "Driver's licence: MV 8812 4409.\n"
            "Address: 4 Mill Lane, Leeds LS6 2QA. Sister in Kingston K7L 3N6, cousin at Wells BA5 2PD.\n"
            "Prinsengracht 263\n1016 GV Amsterdam\n"
            "Seen at Harbourside Clinic Benedetta Quarshie for review.\n"
            "Lindgren, Astrid Rose    MRN 5512093\n"
            "Cultures: Pseudomonas aeruginosa, Enterococcus faecalis, Candida auris, Listeria monocytogenes, "
            "Stenotrophomonas maltophilia and Peptoniphilus spp. Abbey pain scale 8, Braden 14, Waterlow 20, "
            "Morse fall scale 45, Barthel 60, CURB-65 3, Rockwood 6, Norton risk score 12. Patient ID checked. "
            "MRI: L4/5 and L5/S1 disc bulges, C5/6 foraminal narrowing, T12/L1 wedge fracture, C5-6 fusion. "
            "Pharmacologically, factor Xa inhibition. Staged T2N1M0, Stage T3 N0 M0; 1000 ML Saline given.")
    spans = deid.analyze(text)
    found = {text[s.start:s.end]: s.entity for s in spans}
    for secret in ("PQR4471", "485 777 3456", "1203891234", "1234-567-890-AB", "2951 44837 2", "XR-2291-0033",
                   "55120934", "BCX 2281 5510", "HLT 7790 2231", "MV 8812 4409", "Leeds", "LS6 2QA", "Kingston",
                   "K7L 3N6", "Wells", "BA5 2PD", "1016 GV", "Amsterdam", "Benedetta Quarshie", "Astrid Rose"):
        assert secret in found, (secret, found)
    assert found["Harbourside Clinic"] == "FACILITY" and found["Benedetta Quarshie"] == "NAME"
    assert found["Wells"] == "LOCATION"   # an eponym before a postcode is a town
    tail = text.index("Cultures:")
    assert [s for s in spans if s.start >= tail] == [], [text[s.start:s.end] for s in spans if s.start >= tail]


def test_round5_formats_in_new_sentences(deid):
    """The classes of round 5 (docs/privacy.md), on sentences that are in no gold note."""
    text = ("Pt: OYELARAN, Adebola K. (known as \"Bola\")    UR 4471209    UHID KMC/2024/118093    IP No. IP24-33107\n"
            "Folder no. GSH/OPD/24/55102    Fall-Nr. 2024-7731902    Befund-Nr. MR-KL-30917    Lab No. K24-55871, "
            "lab ref. CY/24/7702\nCHI 0507446613, SA ID 8203155029087, pacemaker SN PJN884213K, NHIA no. KW-1187702-01, "
            "medical aid no. GEMS 55820913.\n"
            "Signed: Dr Farida Okonjo, GMC 6639021; pharmacist AHPRA PHA0002267719; HPCSA MP0933127; CPSO #0833419.\n"
            "Home: Ballymahon, Co. Longford N39 X2H7. Relative in Mysuru – 570009.\n"
            "Age (94 y). Received 14.03.24, report 2024/03/19, next review on the 21st, surgery on the third of October.\n"
            "Her brother Tadhg (\"Taidy\") visits; partner wiremu rang. Reviewed with reg K. Vasilenko and CNM P. "
            "Ostrowska (bleep 5521, pager 7718). Dr. med. Henrike Bruckmoser consulted. Smt. Lakshmi Venkatesan, W/o S. "
            "Venkatesan. Attendant (daughter) Kavya.\n"
            "Seen at Ridgeway Oncology Centre and Ysbyty Bryn Meurig.\n"
            "Plan: 50 mL Omnipaque 300, Endone 5 mg, OxyNorm 10 mg PRN, Webster-pak weekly; ER 7/8, PR 3/8, day 3/5, "
            "power 4/5; Pritchard regimen not used; Capgras delusion, Fregoli delusion; Ortolani negative; Abbey >= 6; "
            "Na 134. Counselled in Tamil.")
    spans = deid.analyze(text)
    found = [text[s.start:s.end] for s in spans]
    for secret in ("Adebola", "Bola", "4471209", "KMC/2024/118093", "IP24-33107", "GSH/OPD/24/55102", "2024-7731902",
                   "MR-KL-30917", "K24-55871", "CY/24/7702", "0507446613", "8203155029087", "PJN884213K",
                   "KW-1187702-01", "GEMS 55820913", "6639021", "PHA0002267719", "MP0933127", "0833419", "Longford",
                   "N39 X2H7", "570009", "94", "14.03.24", "2024/03/19", "the 21st", "third of October", "Tadhg",
                   "Taidy", "wiremu", "K. Vasilenko", "P. Ostrowska", "5521", "7718", "Henrike Bruckmoser",
                   "Lakshmi Venkatesan", "S. Venkatesan", "Kavya", "Ridgeway Oncology Centre", "Ysbyty Bryn Meurig"):
        assert any(secret in f for f in found), (secret, found)
    tail = text.index("Plan:")
    assert [s for s in spans if s.start >= tail] == [], [text[s.start:s.end] for s in spans if s.start >= tail]


def test_german_note_keeps_its_nouns_and_loses_its_names(deid):
    """German capitalises every noun: in a German note everyday nouns, noun endings and compounds with an everyday
    head are not names; names after a German label or title still go (round 5)."""
    text = ("Klinik für Innere Medizin — Abteilung Nephrologie\nPatientin: Brunhilde Oberrieder, geb. 14.02.1949\n"
            "Sonographie der Nieren mit Doppler: keine Stauung, Befund unauffällig. Befundung durch Dr. med. Ansgar "
            "Wölfl, Rückmeldung an die Zuweiserin. Wiedervorstellung in der Sprechstunde nach Laborkontrolle.")
    found = {text[s.start:s.end] for s in deid.analyze(text)}
    assert {"Brunhilde Oberrieder", "14.02.1949", "Ansgar Wölfl"} <= found, found
    for noun in ("Befund", "Zuweiserin", "Wiedervorstellung", "Laborkontrolle", "Sprechstunde", "Nieren"):
        assert not any(noun in f for f in found), (noun, found)


def test_text_without_identifiers_keeps_every_word(deid):
    """Precision on the project's own clinical prose (KB facts as pretraining paragraphs): it has no identifiers,
    so every replacement is a false positive. 0 of 840 paragraphs after round 4 (52 before: 'Pharmacologically,')."""
    from medllm.data.builtin.training import pretrain_records

    hits = [(r["text"][s.start:s.end], s.entity) for r in pretrain_records() for s in deid.analyze(r["text"])]
    assert hits == [], hits[:20]


def test_round6_formats_in_new_sentences(deid):
    """The classes of round 6 (docs/privacy.md), on sentences written for this test and in no gold note: labelled
    name fields, capitals headers with bare initials, message headers, "B/O", particles, lower-case names, more
    national numbers and registers, masked numbers, more phone and address formats, named teams and practices;
    then products, lab names, plural eponyms, scores and services that must stay."""
    text = ("Surname: KOWALCZYK          Forename: Bartosz\n"
            "PATIENT: NAKASHIMA-BELL, RIKO T     MRN: 55102938\n"
            "Pt: DLAMINI, NOMVULA THANDEKA   Acct 7730019\n"
            "From: Tamsin Oyelowo (guardian) | Subject: inhaler\n"
            "Name: B/O FARIDAH NORAZLIN   Mother NRIC: S7712345D   Father: ONG KAH SENG (HP 8123 4567)\n"
            "Record by: B. El Amrani; Verified by: Priya Nair R. (Sr. Technologist); Dr Siti Hajar binti Yusof "
            "(MCR M55123A); Mrs A.M. (Annie) de Groot, 91 years.\n"
            "Noor says the pain is better. Old letters have her as Peggy. pt: tavita leiataua, 31M; cousin/teammate "
            "losa drove him.\n"
            "Job #QA55120, session MT-8812046, ID no. 7802145009087, ABHA no.: 12-3456-7890-1234, Aadhaar XXXX XXXX "
            "9921, interpreter ID 66120, application # 1188-2290-3301, UK passport 554120987. UHID: KH-00918273, FIN "
            "0009912883471, serial on the box 5520981, GMS medical card no. 3318204B, travel ins: WTA-55102-UK, PSI reg. "
            "no. 9921, TNMC Reg. No. 77120. Mob 06-12345678; clinic (022-2417 5533); son (0171 4455 6677). CT of "
            "January '24 showed.\n"
            "Address: 9 Okafor Street, off Allen Avenue, Ikeja, Lagos. Flat at No. 7, 2nd Cross Road, Jayanagar, "
            "Bengaluru - 560011. Stays at 14 rue des Lilas, Nantes 44000. Office: Kaiserswerther Straße 115, "
            "Düsseldorf 40474. Moved to 850 N Lake Shore Dr, Apt 12, Chicago, IL 60611. Seen at Meadowbank Urgent "
            "Care, Evanston, IL.\n"
            "Referred by Riverbend Pediatric & Adolescent Cardiology; seen by the Elmfield Community Mental Health "
            "Team of Thames Valley & Chiltern NHS Foundation Trust.\n"
            "Plan: 20 Fr Blake drain, 2-0 Vicryl, 3-0 Monocryl, Prolene to skin, Tegaderm; Optiflow then Airvo; "
            "Penthrox in the ambulance; chart on Kardex; Adcal D3 Forte; Platelet count 88, Hct 0.31, rising Hct; "
            "Stokes-Adams attacks; maternal aunt ovarian cancer; Interpreter: Spanish. Pain 7/10 -> 3/10, hip "
            "flexion 4/5, grip 3/5, 2/5 palpable. Ward 12, Bay 3. Department of Diagnostic Radiology; General "
            "Surgery; Clinical Pharmacy. Sister drives a Honda Civic.")
    spans = deid.analyze(text)
    found = [text[s.start:s.end] for s in spans]
    for secret in ("KOWALCZYK", "Bartosz", "NAKASHIMA-BELL", "RIKO T", "NOMVULA", "THANDEKA", "Tamsin Oyelowo",
                   "FARIDAH NORAZLIN", "S7712345D", "ONG KAH SENG", "8123 4567", "B. El Amrani", "Priya Nair R.",
                   "Siti Hajar binti Yusof", "M55123A", "A.M. (Annie) de Groot", "Noor", "Peggy", "tavita leiataua",
                   "losa", "QA55120", "MT-8812046", "7802145009087", "12-3456-7890-1234", "XXXX XXXX 9921", "66120",
                   "1188-2290-3301", "554120987", "KH-00918273", "0009912883471", "5520981", "3318204B",
                   "WTA-55102-UK", "9921", "77120", "06-12345678", "022-2417 5533", "0171 4455 6677", "January '24",
                   "9 Okafor Street", "Allen Avenue", "Ikeja", "Lagos", "2nd Cross Road", "Jayanagar", "Bengaluru",
                   "560011", "14 rue des Lilas", "Nantes", "44000", "Kaiserswerther Straße 115", "Düsseldorf", "40474",
                   "850 N Lake Shore Dr", "Chicago", "60611", "Meadowbank Urgent Care", "Evanston",
                   "Riverbend Pediatric & Adolescent Cardiology", "Elmfield Community Mental Health Team",
                   "Thames Valley & Chiltern NHS Foundation Trust"):
        assert any(secret in f for f in found), (secret, found)
    for label in ("Surname", "Forename", "Acct", "Subject", "Father", "Mother"):
        assert not any(label in f for f in found), (label, found)
    tail = text.index("Plan:")
    assert [s for s in spans if s.start >= tail] == [], [text[s.start:s.end] for s in spans if s.start >= tail]
