"""The 150 demo_free facts asked in a TRAINING wording (templates.QUESTION): separates not-memorised from
not-generalised-to-new-wordings in the issue-16 A/B. Writes /tmp/demo_free_trainwording.jsonl."""
import json
from medllm.data.builtin.free import free_records
from medllm.data.builtin import templates as T
from medllm.data.builtin.kb import cap
with open("/tmp/demo_free_trainwording.jsonl","w") as fh:
    for i, r in enumerate(free_records()):
        attr = r["topic"].split("/")[1]
        q = T.QUESTION[attr][i % 3].format(name=r["entity"])
        fh.write(json.dumps({**r, "question": q})+"\n")
