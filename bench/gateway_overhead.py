"""Gateway overhead: tokens/s through `medllm serve --upstream` vs directly against the upstream.

The upstream is medllm's own engine server (the model given by --model, default the
embedded SmolLM2-135M-Instruct) on a loopback port; the gateway is a second medllm app
in front of it (its auth, limits, hash-chained audit and safety layer all on, as a
hospital would run it). Both sides get the same seeded requests; rounds alternate
direct / gateway so that a busy machine slows both alike. Reported: completion tokens per
second over each round (from the responses' usage), time to first token, and the ratio
gateway / direct at 1 and 16 concurrent streams (the issue's target: overhead <= 5%).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import ratio, write_result  # noqa: E402

import medllm  # noqa: E402,F401  (offline guard before transformers)

QUESTIONS = [
    "What are the first-line treatments for type 2 diabetes?",
    "What are common side effects of metformin?",
    "How is community-acquired pneumonia diagnosed?",
    "What does a high TSH level indicate?",
    "List risk factors for deep vein thrombosis.",
    "What is the mechanism of action of ACE inhibitors?",
    "What are warning signs of a stroke?",
    "How is iron-deficiency anaemia treated?",
]


def one_stream(url: str, key: str, model: str, question: str, tokens: int, seed: int) -> dict:
    import httpx

    body = {"model": model, "messages": [{"role": "user", "content": question}], "stream": True,
            "max_tokens": tokens, "temperature": 0.7, "top_p": 0.9, "seed": seed,
            "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    first, usage = None, None
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=300,
                      headers={"Authorization": f"Bearer {key}"}) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if first is None and chunk.get("choices") and chunk["choices"][0].get("delta", {}).get("content"):
                first = time.perf_counter() - t0
            if chunk.get("usage"):
                usage = chunk["usage"]
    return {"seconds": time.perf_counter() - t0, "ttft": first, "tokens": (usage or {}).get("completion_tokens", 0)}


def round_of(url: str, key: str, model: str, streams: int, tokens: int, seed: int) -> dict:
    results: list[dict] = [None] * streams  # type: ignore[list-item]

    def go(i):
        results[i] = one_stream(url, key, model, QUESTIONS[i % len(QUESTIONS)], tokens, seed + i)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=go, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    toks = sum(r["tokens"] for r in results)
    return {"tok_s": toks / wall, "tokens": toks, "wall": wall,
            "ttft": statistics.mean(r["ttft"] for r in results if r["ttft"] is not None)}


@contextlib.contextmanager
def gateway_process(upstream_url: str, upstream_key: str, gateway_key: str, tmp: Path):
    """`medllm serve --upstream URL` as a child on a free loopback port (serve.vllm's EngineProcess:
    health wait, log tail, clean stop)."""
    from medllm.serve.loopback import free_port
    from medllm.serve.vllm import EngineProcess

    (tmp / "upstream.key").write_text(upstream_key + "\n")
    port = free_port()
    child = EngineProcess([sys.executable, "-m", "medllm.cli.main", "serve", "--upstream", upstream_url,
                           "--upstream-key-file", str(tmp / "upstream.key"), "--upstream-model", "m",
                           "--api-keys", str(tmp / "gw_keys.txt"), "--audit-log", str(tmp / "gw_audit_proc.jsonl"),
                           "--rate-limit", "1000000", "--max-queue", "256", "--port", str(port)],
                          log_path=tmp / "gateway.log", name="gateway").start()
    try:
        url = f"http://127.0.0.1:{port}"
        child.wait_ready(url, gateway_key, timeout=120)
        yield SimpleNamespace(url=url)
    finally:
        child.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--streams", default="1,16")
    ap.add_argument("--gateway-process", action="store_true",
                    help="run the gateway as its own `medllm serve --upstream` process (the deployed shape: "
                         "it shares the CPU with the engine but not its Python interpreter lock)")
    args = ap.parse_args()

    from medllm.config.serve import SamplingDefaults, ServeConfig
    from medllm.serve import create_app
    from medllm.serve.loopback import LoopbackServer as Loopback
    from medllm.serve.models import ModelPool, load_served
    from medllm.serve.security import add_key
    from medllm.serve.upstream import Upstream, upstream_pool

    tmp = Path(tempfile.mkdtemp(prefix="medllm-gw-bench-"))
    served = load_served(args.model, max_batch=16, max_queue=256, model_id="m",
                         sampling=SamplingDefaults(max_tokens=args.tokens))
    up_key = add_key(tmp / "up_keys.txt", "gateway")
    up_cfg = ServeConfig(api_keys_file=str(tmp / "up_keys.txt"), audit_log=str(tmp / "up_audit.jsonl"),
                         safety_layer=False, rate_limit_per_minute=1_000_000, max_queue=256)
    gw_key = add_key(tmp / "gw_keys.txt", "clinician")
    gw_cfg = ServeConfig(api_keys_file=str(tmp / "gw_keys.txt"), audit_log=str(tmp / "gw_audit.jsonl"),
                         rate_limit_per_minute=1_000_000, max_queue=256)
    pool = ModelPool([served])
    details: dict = {}
    try:
        with Loopback(create_app(up_cfg, pool)) as up:
            gw_pool = upstream_pool(Upstream(up.url, api_key=up_key), models={"m": "m"})
            with (gateway_process(up.url, up_key, gw_key, tmp) if args.gateway_process
                  else Loopback(create_app(gw_cfg, gw_pool))) as gw:
                round_of(up.url, up_key, "m", 2, 8, 0)      # warm-up: first forward passes, sockets
                round_of(gw.url, gw_key, "m", 2, 8, 0)
                for n in [int(s) for s in args.streams.split(",")]:
                    rows = {"direct": [], "gateway": []}
                    for r in range(args.rounds):
                        order = [("direct", up.url, up_key), ("gateway", gw.url, gw_key)]
                        for side, url, key in (order if r % 2 == 0 else order[::-1]):
                            rows[side].append(round_of(url, key, "m", n, args.tokens, 100 * r))
                    med = {side: {"tok_s": statistics.median(x["tok_s"] for x in v),
                                  "ttft_s": statistics.median(x["ttft"] for x in v),
                                  "tokens_per_round": [x["tokens"] for x in v]} for side, v in rows.items()}
                    med["gateway_over_direct_tok_s"] = ratio(med["gateway"]["tok_s"], med["direct"]["tok_s"])
                    details[f"streams_{n}"] = med
    finally:
        pool.stop()
    summary = {k: v["gateway_over_direct_tok_s"] for k, v in details.items()}
    write_result("gateway_overhead", {"model": args.model, "tokens_per_stream": args.tokens,
                                      "rounds": args.rounds,
                                      "gateway": "own process" if args.gateway_process else "same process as the engine",
                                      "gateway_over_direct": summary, "details": details})


if __name__ == "__main__":
    main()
