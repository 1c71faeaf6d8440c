"""A stand-in for ``python -m vllm.entrypoints.openai.api_server`` on CPU: takes the
vLLM flags medllm passes and serves them with medllm's own engine server, so the
launcher (health wait, LoRA names, key, process cleanup) is tested without a GPU.

FAKE_VLLM_MODE: ``serve`` (default) | ``crash`` (logs, exits 3) | ``hang`` (logs,
starts a grandchild, never serves). FAKE_VLLM_RECORD: file to write argv and pids to."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

mode = os.environ.get("FAKE_VLLM_MODE", "serve")
p = argparse.ArgumentParser()
for flag in ("--model", "--served-model-name", "--host", "--port", "--tensor-parallel-size",
             "--gpu-memory-utilization", "--max-model-len", "--max-loras", "--max-lora-rank"):
    p.add_argument(flag)
p.add_argument("--enable-lora", action="store_true")
p.add_argument("--lora-modules", nargs="+", default=[])
args = p.parse_args()

record = {"argv": sys.argv[1:], "pid": os.getpid(), "key_in_env": bool(os.environ.get("VLLM_API_KEY"))}
print("INFO fake vLLM starting", args.model, flush=True)
if mode == "crash":
    print("ERROR CUDA out of memory (fake)", flush=True)
    sys.exit(3)
if mode == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    record["grandchild"] = child.pid
if os.environ.get("FAKE_VLLM_RECORD"):
    with open(os.environ["FAKE_VLLM_RECORD"], "w") as fh:
        json.dump(record, fh)
if mode == "hang":
    for _ in range(3000):
        time.sleep(0.1)
    sys.exit(0)

import uvicorn  # noqa: E402

from medllm.config.serve import SamplingDefaults, ServeConfig  # noqa: E402
from medllm.serve import create_app, load_served  # noqa: E402
from medllm.serve.models import ModelPool  # noqa: E402
from medllm.serve.security import hash_key  # noqa: E402

loras = dict(m.split("=", 1) for m in args.lora_modules)
sm = load_served(args.model, adapters=loras, model_id=args.served_model_name, dtype="float32",
                 sampling=SamplingDefaults(max_tokens=16))
keys = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
keys.write(f"medllm {hash_key(os.environ['VLLM_API_KEY'])}\n")
keys.close()
app = create_app(ServeConfig(api_keys_file=keys.name, safety_layer=False, rate_limit_per_minute=100_000),
                 ModelPool([sm]))
uvicorn.run(app, host=args.host, port=int(args.port), log_level="warning")
