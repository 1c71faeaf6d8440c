"""The free-answer matcher (medllm.eval.factmatch): true positives, near misses, negation."""
from __future__ import annotations

import pytest

from medllm.eval.factmatch import key_parts, matches, needed, normalise

TREATMENTS = ["lifestyle change plus insulin", "lifestyle change and exercise", "lifestyle change plus a statin"]
ACE_PEERS = ["dry mouth", "dry cough", "cough and wheeze", "nausea and headache", "nausea", "bleeding"]


@pytest.mark.parametrize("answer, ok", [
    ("Metformin, together with lifestyle change.", True),
    ("metformin", True),
    ("Lifestyle change.", False),                   # the generic part alone does not tell diabetes apart
    ("Do not give metformin; start insulin.", False),
    ("Insulin rather than metformin.", False),
    ("Metformin rather than insulin.", True),
    ("Metformine", False),                          # whole words only
])
def test_treatment_key_part_and_negation(answer, ok):
    key = key_parts("lifestyle change plus metformin", TREATMENTS)
    assert key.parts == ("metformin",)
    assert matches(answer, key) is ok


@pytest.mark.parametrize("answer, ok", [
    ("ACE inhibitors can cause angioedema.", True),
    ("Watch for hyperkalemia.", True),              # US spelling of hyperkalaemia
    ("High potassium.", True),                      # synonym
    ("A dry cough.", False),                        # "cough" is shared by peers: not a key part
    ("Nausea and diarrhoea.", False),
    ("There is no angioedema risk.", False),
])
def test_several_part_value_counts_one_key_part(answer, ok):
    key = key_parts("cough, angioedema and hyperkalaemia", ACE_PEERS)
    assert set(key.parts) == {"angioedema", "hyperkalaemia"}
    assert matches(answer, key) is ok


def test_every_part_generic_needs_all_parts():
    key = key_parts("nausea and headache", ["nausea", "headache and dizziness", "nausea and vomiting",
                                            "headache", "nausea, headache"])
    assert key.need_all
    assert matches("It can cause nausea and a headache.", key)
    assert not matches("It can cause nausea.", key)


@pytest.mark.parametrize("answer, ok", [
    ("Chest radiograph", True), ("A chest X-ray.", True), ("chest xray", True),
    ("chest pain", False), ("An X-ray of the foot", False),
])
def test_synonyms_on_word_boundaries(answer, ok):
    assert matches(answer, key_parts("chest X-ray", [])) is ok


def test_abbreviation_in_brackets_is_an_alternative():
    key = key_parts("continuous positive airway pressure (CPAP)", [])
    assert matches("CPAP at night.", key) and matches("Continuous positive airway pressure.", key)
    assert not matches("Positive thinking.", key)


def test_numeric_ranges_need_their_figures():
    key = key_parts("3.5 to 5.0 mmol/L", [], numeric=True)
    assert matches("Between 3.5 and 5 mmol/L.", key)
    assert not matches("3.5 to 5.5 mmol/L", key)
    assert not matches("About 5.0", key)
    hba1c = key_parts("below 42 mmol/mol (5.7 percent)", [], numeric=True)
    assert matches("Under 5.7%.", hba1c) and not matches("below 48 mmol/mol", hba1c)


def test_negative_fact_is_not_defeated_by_its_own_negation():
    key = key_parts("usually no symptoms at all", [])
    assert matches("Most people have no symptoms.", key) and matches("It is often asymptomatic.", key)
    assert not matches("Headache and nosebleeds.", key)


def test_long_phrase_tolerates_a_paraphrase_but_not_a_different_finding():
    key = key_parts("sudden tearing chest pain going through to the back", [])
    assert matches("Tearing chest pain radiating to the back.", key)
    assert not matches("Chest pain.", key)
    assert needed(2) == 2 and needed(3) == 3 and needed(5) == 4


def test_spelling_folds_british_to_us():
    assert normalise("Anaemia, oedema, tumour, haemoglobin") == normalise("anemia, edema, tumor, hemoglobin")
    assert normalise("ACE inhibitors") == normalise("ace inhibitor")
