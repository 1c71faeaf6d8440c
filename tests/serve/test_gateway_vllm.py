"""`--engine vllm` on CPU: what is served (plan), the one-line refusal without vLLM,
and the launcher (health wait, log tail, process cleanup) with a fake engine child
(tests/serve/fake_vllm.py, medllm's own server behind vLLM's flags)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from medllm.serve.security import add_key
from medllm.serve.vllm import EngineStartError, EngineUnavailable, check_vllm, plan_vllm, start_vllm
from serve_helpers import free_port

FAKE = [sys.executable, str(Path(__file__).with_name("fake_vllm.py"))]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")   # a zombie holds no GPU memory; its reaper is not us


def _wait_gone(pids, seconds=15):
    deadline = time.monotonic() + seconds
    while not all(_gone(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if not _gone(p)]}"
        time.sleep(0.1)


def _fake_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    return folder


def _adapter(folder: Path, base: Path, r: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": r, "base_model_name_or_path": str(base)}))
    return folder


def test_plan_serves_one_base_with_every_stage_as_a_lora(tiny_run_dir, tiny_model_dir, tiny_adapter_dir):
    plan = plan_vllm(tiny_run_dir)
    assert plan.model == tiny_model_dir.resolve() and plan.served_name == "demo"
    assert plan.loras == {"demo/sft": tiny_adapter_dir.resolve()} and plan.max_lora_rank == 8   # r=4 -> 8
    args = plan.args(host="127.0.0.1", port=1234, tensor_parallel=2, gpu_memory_utilization=0.8, max_model_len=2048)
    assert args[args.index("--lora-modules") + 1] == f"demo/sft={tiny_adapter_dir.resolve()}"
    assert {"--enable-lora", "--host", "127.0.0.1", "--tensor-parallel-size", "2", "--max-model-len"} <= set(args)
    assert "--api-key" not in args   # the key goes in the child's environment, not on `ps`


def test_plan_for_merged_and_stacked_stages(tmp_path):
    base = _fake_model(tmp_path / "base")
    sft_merged, dpo_merged = _fake_model(tmp_path / "sft_merged"), _fake_model(tmp_path / "dpo_merged")
    sft_ad = _adapter(tmp_path / "sft_ad", base, 16)
    run = tmp_path / "runs" / "icu"
    run.mkdir(parents=True)
    stages = {"sft": {"status": "done", "model_dir": str(sft_merged), "adapter_dir": str(sft_ad), "base_model": str(base)}}
    (run / "state.json").write_text(json.dumps({"stages": stages}))
    plan = plan_vllm(run)   # final = sft merged = base + sft adapter: serve base, alias icu -> the adapter
    assert plan.model == base.resolve() and plan.served_name == "icu/base"
    assert plan.loras == {"icu/sft": sft_ad.resolve()} and plan.aliases == {"icu": "icu/sft"}

    dpo_ad = _adapter(tmp_path / "dpo_ad", sft_merged, 8)
    stages["dpo"] = {"status": "done", "model_dir": str(dpo_merged), "adapter_dir": str(dpo_ad)}
    (run / "state.json").write_text(json.dumps({"stages": stages}))
    plan = plan_vllm(run)   # adapters on two different bases: the final merged model only
    assert plan.model == dpo_merged.resolve() and plan.served_name == "icu" and plan.loras == {}
    assert len(plan.notes) == 2 and all("not served" in n for n in plan.notes)


def test_engine_vllm_without_vllm_exits_in_one_line_before_anything_starts(tiny_run_dir, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    monkeypatch.delenv("MEDLLM_VLLM_COMMAND", raising=False)
    with pytest.raises(EngineUnavailable, match="vLLM is not installed"):
        check_vllm()
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "medllm.cli.main", "serve", str(tiny_run_dir), "--engine", "vllm"],
                         capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k != "MEDLLM_VLLM_COMMAND"})
    msg = " ".join((out.stdout + out.stderr).split())   # rich wraps at the pipe's 80 columns
    assert out.returncode == 1 and msg.startswith("error: --engine vllm: vLLM is not installed"), msg
    assert msg.count("error:") == 1 and 'pip install -e ".[vllm]"' in msg and "Traceback" not in msg
    assert time.monotonic() - t0 < 30


def test_engine_that_crashes_is_reported_with_its_last_log_lines(tiny_run_dir, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_MODE", "crash")
    with pytest.raises(EngineStartError) as err:
        start_vllm(plan_vllm(tiny_run_dir), command=FAKE, timeout=60)
    assert "exited with code 3" in str(err.value) and "CUDA out of memory (fake)" in str(err.value)


def test_engine_that_never_serves_times_out_and_leaves_no_process(tiny_run_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_VLLM_MODE", "hang")
    monkeypatch.setenv("FAKE_VLLM_RECORD", str(tmp_path / "record.json"))
    t0 = time.monotonic()
    with pytest.raises(EngineStartError, match="not ready after 3 s") as err:
        start_vllm(plan_vllm(tiny_run_dir), command=FAKE, timeout=3)
    assert "fake vLLM starting" in str(err.value) and time.monotonic() - t0 < 25
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["key_in_env"]
    _wait_gone([rec["pid"], rec["grandchild"]])   # the whole process group went


def test_medllm_serve_engine_vllm_serves_the_run_and_stops_the_engine_on_sigterm(tiny_run_dir, tmp_path):
    """The real command with the fake engine: `<run>/<stage>` by name through the gateway,
    audited with the adapter's hash; SIGTERM to medllm stops the engine child."""
    from openai import OpenAI

    from medllm.serve.models import folder_sha256

    key = add_key(tmp_path / "keys.txt", "dr_grey")
    port = free_port()
    env = {**os.environ, "MEDLLM_QUIET": "1", "MEDLLM_VLLM_COMMAND": " ".join(FAKE),
           "FAKE_VLLM_RECORD": str(tmp_path / "record.json")}
    cmd = [sys.executable, "-m", "medllm.cli.main", "serve", str(tiny_run_dir), "--engine", "vllm", "--port", str(port),
           "--api-keys", str(tmp_path / "keys.txt"), "--audit-log", str(tmp_path / "audit.jsonl"),
           "--engine-start-timeout", "120"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 150
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "gateway did not come up"
            time.sleep(0.3)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=60)
        assert [m.id for m in client.models.list()] == ["demo", "demo/sft"]
        chunks = list(client.chat.completions.create(
            model="demo/sft", messages=[{"role": "user", "content": "How is asthma treated?"}],
            stream=True, max_tokens=6))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "not a diagnosis" in text and chunks[-1].choices[0].finish_reason in ("stop", "length")
        engine_pid = json.loads((tmp_path / "record.json").read_text())["pid"]
        argv = json.loads((tmp_path / "record.json").read_text())["argv"]
        assert "--enable-lora" in argv and argv[argv.index("--host") + 1] == "127.0.0.1"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode is not None
    _wait_gone([engine_pid])
    rec = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert rec[-1]["user"] == "dr_grey" and rec[-1]["adapter"] == "demo/sft"
    assert rec[-1]["model_sha256"] == folder_sha256(_lora_path(argv))


def _lora_path(argv: list[str]) -> Path:
    return Path(argv[argv.index("--lora-modules") + 1].split("=", 1)[1])
