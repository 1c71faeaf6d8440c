"""Mixing by tokens or samples hits the target ratio and records what it did."""
from __future__ import annotations

import pytest
from datasets import Dataset

from medllm.data.mix import MixError, mix_datasets


def _source(name, n, words):
    return Dataset.from_list([{"text": f"{name} {i} " + " ".join(["word"] * (words + i % 7)), "source": name}
                              for i in range(n)])


@pytest.fixture
def sources():
    return {"bio": _source("bio", 900, 30), "clin": _source("clin", 200, 50), "gen": _source("gen", 400, 20)}


def test_15_1_4_by_tokens_within_two_percent(sources, tiny_tokenizer):
    weights = {"bio": 15, "clin": 1, "gen": 4}
    ds, m = mix_datasets(sources, weights, by="tokens", seed=1, tokenizer=tiny_tokenizer)
    for k, w in weights.items():
        assert abs(m["achieved_ratio"][k] - w / 20) < 0.02
    assert m["max_ratio_error"] < 0.02 and m["unit"] == "tokens"
    # the manifest's counts are the dataset's real content
    real = sum(len(tiny_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in ds["text"])
    assert real == m["total"]
    assert len(ds) == sum(v["samples_taken"] for v in m["members"].values())


def test_by_samples_with_groups_total_and_repeats(sources):
    groups = {"bio": "biomedical", "clin": "clinical", "gen": "general"}
    ds, m = mix_datasets(sources, {"biomedical": 15, "clinical": 1, "general": 4}, by="samples", total=4000,
                         seed=0, groups=groups)
    assert len(ds) == 4000
    assert m["members"]["biomedical"]["samples_taken"] == 3000 and m["members"]["biomedical"]["passes"] == 4
    assert abs(m["achieved_ratio"]["clinical"] - 0.05) < 1e-9


def test_seeded_and_hashed(sources, tmp_path):
    f = tmp_path / "bio.txt"
    f.write_text("x")
    a, ma = mix_datasets(sources, {"bio": 1, "gen": 1}, by="samples", seed=5, files={"bio": [str(f)]})
    b, _ = mix_datasets(sources, {"bio": 1, "gen": 1}, by="samples", seed=5)
    c, _ = mix_datasets(sources, {"bio": 1, "gen": 1}, by="samples", seed=6)
    assert a["text"] == b["text"] != c["text"]
    assert len(ma["source_sha256"]["bio"][str(f)]) == 64


def test_bad_weights_and_kinds(sources):
    with pytest.raises(MixError, match="matches no loaded source"):
        mix_datasets(sources, {"nope": 1})
    sft = Dataset.from_list([{"messages": [{"role": "user", "content": "q"}], "source": "s"}])
    with pytest.raises(MixError, match="different record kinds"):
        mix_datasets({**sources, "sft": sft}, {"bio": 1, "sft": 1}, by="samples")
