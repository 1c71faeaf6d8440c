"""Cleaning: near-dedup with known pairs, exact dedup, filters, decontamination, report."""
from __future__ import annotations

from datasets import Dataset

from medllm.config.data import CleanConfig
from medllm.data.clean import build_decontam_index, clean_dataset, guess_language, repetition_ratio

DISTINCT = [
    "Metformin is the usual first medicine for type 2 diabetes and is taken with meals to reduce stomach upset.",
    "Asthma is controlled with an inhaled corticosteroid, and a reliever inhaler is used for sudden symptoms.",
    "A patient with crushing chest pain should receive an ECG within ten minutes of arriving at hospital.",
    "Gout flares are treated with colchicine or an anti-inflammatory drug while the joint is rested.",
    "Iron deficiency anaemia in an older adult always needs a search for hidden bleeding from the gut.",
    "Children with ear infections usually recover without antibiotics within three days of onset.",
]
PARAPHRASES = [  # light rewordings of DISTINCT[0..2]: character 5-gram Jaccard 0.85, 1.0, 0.74 (distinct pairs < 0.05)
    "Metformin is the usual first medication for type 2 diabetes and is taken with meals to reduce stomach upset.",
    "Asthma is controlled with an inhaled corticosteroid, and a reliever inhaler is used for sudden symptoms!",
    "A patient with crushing chest pain should get an ECG within ten minutes of arriving at the hospital.",
]


def _ds(texts):
    return Dataset.from_list([{"text": t, "source": "t"} for t in texts])


def test_near_dedup_removes_paraphrases_and_keeps_distinct():
    ds, report = clean_dataset(_ds(DISTINCT + PARAPHRASES), CleanConfig(exact_dedup=False, near_dedup_threshold=0.6))
    assert ds["text"] == DISTINCT
    assert report["removed"] == {"near_duplicate": 3}


def test_exact_dedup_ignores_case_and_spacing():
    ds, report = clean_dataset(_ds([DISTINCT[0], "  " + DISTINCT[0].upper() + " ", DISTINCT[1]]),
                               CleanConfig(near_dedup=False))
    assert len(ds) == 2 and report["removed"] == {"exact_duplicate": 1}
    assert report["examples"]["exact_duplicate"]


def test_length_repetition_and_language_filters():
    loop = "take the tablet now " * 12
    texts = ["ok", DISTINCT[3], loop, "这是一个关于糖尿病治疗的中文句子，不应该出现在英文数据里。", DISTINCT[4] * 4]
    ds, report = clean_dataset(_ds(texts), CleanConfig(min_chars=5, max_chars=300, language="en", near_dedup=False))
    assert ds["text"] == [DISTINCT[3]]
    assert report["removed"] == {"too_short": 1, "repetitive": 1, "language_not_en": 1, "too_long": 1}
    assert repetition_ratio(loop) > 0.5 > repetition_ratio(DISTINCT[0])
    assert guess_language(DISTINCT[2]) == "en"


def test_decontamination_removes_planted_benchmark_items(tmp_path, jsonl):
    bench = [{"question": "Which enzyme is inhibited by allopurinol in the long-term prevention of recurrent gout attacks?",
              "choices": ["xanthine oxidase", "COX-2", "urease", "lipase"], "answer": 0},
             {"question": "A 45-year-old man presents with sudden severe tearing chest pain radiating to his back; "
                          "what is the most likely diagnosis?", "choices": ["a", "b", "c", "d"], "answer": 0}]
    eval_file = jsonl("bench.jsonl", bench)
    planted = [f"Study note: {bench[0]['question']} The answer is xanthine oxidase.",
               "Practice case. A 45-year-old man presents with sudden severe tearing chest pain radiating to his back; "
               "what is the most likely diagnosis? Think of aortic dissection."]
    ds, report = clean_dataset(_ds(DISTINCT + planted), CleanConfig(near_dedup=False),
                               decontam=build_decontam_index([str(eval_file)], n=13))
    assert ds["text"] == DISTINCT
    assert report["removed"] == {"benchmark_overlap": 2}


def test_decontamination_against_builtin_mcq():
    from medllm.data.builtin import builtin_records

    q = builtin_records("demo/mcq")[5]["question"]
    index = build_decontam_index(["builtin:demo/mcq"])
    assert index.hit(f"Some intro text. {q}") and not index.hit(DISTINCT[0])
