"""Reduced A/B data (issue 16): the training sets and the held-out free-answer items restricted to
the entities of a seeded subset of demo_free items. Each kept entity keeps ALL its training facts
(every wording), so per-fact exposure equals the full recipe's; what is missing is interference from
the other entries (the reduced numbers are optimistic). Usage: make_subset.py OUT_DIR [N_ITEMS]"""
import json
import random
import sys
from pathlib import Path

from medllm.data.builtin import builtin_records

out = Path(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
out.mkdir(parents=True, exist_ok=True)
free = builtin_records("demo/free")
items = sorted(random.Random(16).sample(free, n), key=lambda r: r["id"])
names = {r["entity"] for r in items}


def about(rec) -> bool:
    first = next(m["content"] for m in (rec.get("messages") or rec.get("prompt")) if m["role"] == "user")
    return any(name in first for name in names)


def dump(name, rows):
    (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(name, len(rows))


# every item about a kept entity (the free set asks several of its facts)
dump("free", [r for r in free if r["entity"] in names])
dump("sft_facts", [r for r in builtin_records("demo/sft_facts") if about(r)])
dump("sft_sentences", [r for r in builtin_records("demo/sft") if about(r)])
dump("pretrain", [r for r in builtin_records("demo/pretrain")
                  if any(r["text"].lower().count(x.lower()) for x in names)])
