"""De-identification precision on text that has no identifiers: every span flagged is a false positive.

The project's own clinical prose (KB fact sentences, pretraining paragraphs) always; public medical text
(ChatDoctor, first 600 records; PubMedQA test, first 300 abstracts) when the shared data folder is there.

    .venv/bin/python bench/deid_no_phi.py [--examples 20]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

SHARED = Path(os.environ.get("MEDLLM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def corpora() -> dict[str, list[str]]:
    from medllm.data.builtin import templates as T
    from medllm.data.builtin.kb import facts
    from medllm.data.builtin.training import fact_sentence, pretrain_records

    out = {"kb_fact_sentences": [fact_sentence(f, T.FACT[f.attribute][0]) for f in facts()],
           "pretrain_paragraphs": [r["text"] for r in pretrain_records()]}
    chat = SHARED / "instruct" / "chatdoctor" / "genmedgpt5k_chatdoctor5k.json"
    if chat.is_file():
        rows = json.loads(chat.read_text())[:600]
        out["chatdoctor_600"] = [" ".join(str(r.get(k, "")) for k in ("instruction", "input", "output")) for r in rows]
    pqa = SHARED / "pubmedqa" / "pqal_test.jsonl"
    if pqa.is_file():
        rows = [json.loads(line) for line in pqa.read_text().splitlines() if line.strip()][:300]
        out["pubmedqa_test_300"] = [" ".join(r["CONTEXTS"]) + " " + r.get("LONG_ANSWER", "") for r in rows]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=10, help="most frequent flagged strings to show per corpus")
    args = ap.parse_args()
    from medllm.data.deid.engine import Deidentifier

    deid = Deidentifier()
    for name, texts in corpora().items():
        t0 = time.perf_counter()
        per_type: Counter[str] = Counter()
        strings: Counter[tuple[str, str]] = Counter()
        for text in texts:
            for s in deid.analyze(text):
                per_type[s.entity] += 1
                strings[(s.entity, text[s.start:s.end])] += 1
        print(json.dumps({"corpus": name, "texts": len(texts), "chars": sum(map(len, texts)),
                          "flagged": sum(per_type.values()), "per_type": dict(sorted(per_type.items())),
                          "seconds": round(time.perf_counter() - t0, 1),
                          "top": [f"{e}: {v} x{n}" for (e, v), n in strings.most_common(args.examples)]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
