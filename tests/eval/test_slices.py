"""A first-N limit on a label-sorted file is called out; a fair slice is not."""
from __future__ import annotations

import json

from medllm.eval.loaders import load_examples
from medllm.eval.runner import run_task
from medllm.eval.slices import first_n_problem
from medllm.eval.spec import load_spec


def _pubmedqa(path, labels):
    path.write_text("".join(json.dumps({"pubid": str(i), "QUESTION": f"Does drug {i} work?",
                                        "CONTEXTS": [f"Trial {i}."], "final_decision": lab}) + "\n"
                            for i, lab in enumerate(labels)))
    return path


SORTED = ["yes"] * 30 + ["no"] * 20 + ["maybe"] * 10           # like pqal_test.jsonl
MIXED = (["yes", "no", "yes", "maybe", "no", "yes"] * 10)


def test_single_class_and_skewed_first_n_slices_are_flagged(tmp_path):
    spec = load_spec("pubmedqa")
    everything = load_examples(spec, _pubmedqa(tmp_path / "sorted.jsonl", SORTED))
    single = first_n_problem(everything[:20], everything)
    assert single and "single gold label" in single and "sample: random" in single
    skewed = first_n_problem(everything[:40], everything)      # 30 yes + 10 no of a 30/20/10 file
    assert skewed and "total variation" in skewed
    assert first_n_problem(everything, everything) is None      # no limit in effect


def test_representative_slices_pass(tmp_path):
    spec = load_spec("pubmedqa")
    mixed = load_examples(spec, _pubmedqa(tmp_path / "mixed.jsonl", MIXED))
    assert first_n_problem(mixed[:30], mixed) is None
    srt = load_examples(spec, _pubmedqa(tmp_path / "sorted.jsonl", SORTED))
    rnd = load_examples(spec, tmp_path / "sorted.jsonl", limit=30, sample="random", seed=1)
    assert len({ex["label"] for ex in rnd}) == 3 and first_n_problem(rnd, srt) is None


class _AlwaysYes:
    """A backend that prefers the first choice ("yes") on every item."""
    model_id = "always-yes"

    def __call__(self):
        return self

    def loglik(self, requests):
        return [[(-1.0 if i == 0 else -5.0, i == 0) for i in range(len(r.continuations))] for r in requests]


def test_run_task_warns_in_its_notes_when_always_yes_scores_100(tmp_path, caplog):
    spec = load_spec("pubmedqa")
    data = _pubmedqa(tmp_path / "sorted.jsonl", SORTED)
    res = run_task(_AlwaysYes(), spec, "loglik", 0, data, 20, tmp_path / "out", max_new_tokens=4, seed=0)
    assert res["metrics"]["acc"]["value"] == 1.0          # always "yes" on the first 20 = perfect
    assert any(n.startswith("WARNING:") and "single gold label" in n for n in res["notes"])
    assert "single gold label" in caplog.text
    fair = run_task(_AlwaysYes(), spec, "loglik", 0, data, 20, tmp_path / "out2", max_new_tokens=4, seed=0,
                    sample="random")
    assert not any(n.startswith("WARNING:") for n in fair["notes"])
