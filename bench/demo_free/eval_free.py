"""Score one model on the demo free-answer set (and optionally the MCQ): python eval_free.py MODEL OUT [--mcq]."""
import json
import sys
import time

from medllm.config.eval import EvalTask
from medllm.eval import evaluate

model, out = sys.argv[1], sys.argv[2]
tasks = [EvalTask(task="demo_free", mode="generate")]
if "--mcq" in sys.argv:
    tasks.append(EvalTask(task="demo_mcq", mode="loglik"))
t0 = time.time()
res = evaluate(model, tasks, out, batch_size=16, max_new_tokens=64, seed=1234, report=False)
print(json.dumps({k: v["metrics"] for k, v in res["tasks"].items()}), f"{time.time() - t0:.0f}s")
