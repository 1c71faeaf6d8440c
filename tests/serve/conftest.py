"""Serving fixtures: the tiny model behind a started engine, a LoRA adapter and a
run folder that records it, and a loopback uvicorn server."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from medllm.config.serve import SamplingDefaults, ServeConfig
from serve_helpers import LoopbackServer


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter with non-zero random weights, so it visibly changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from medllm.models.convert import write_manifest

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"],
                                           init_lora_weights=False))
    out = tmp_path_factory.mktemp("adapter") / "sft_adapter"
    peft.save_pretrained(out)
    write_manifest(out, {"type": "adapter", "base": str(tiny_model_dir)})   # as a stage writes it: --check passes
    return out


@pytest.fixture(scope="session")
def tiny_run_dir(tiny_model_dir, tiny_adapter_dir, tmp_path_factory) -> Path:
    """A run folder as the pipeline writes it: state.json with a done stage."""
    run = tmp_path_factory.mktemp("runs") / "demo"
    run.mkdir()
    state = {"stages": {"sft": {"status": "done", "model_dir": str(tiny_model_dir),
                                "adapter_dir": str(tiny_adapter_dir)}}}
    (run / "state.json").write_text(json.dumps(state))
    return run


@pytest.fixture(scope="session")
def served_run(tiny_run_dir):
    """ModelPool of the tiny run with its adapter (``demo`` and ``demo/sft``)."""
    from medllm.serve import load_pool

    pool = load_pool(tiny_run_dir, dtype="float32", max_batch=8, max_queue=256,
                     sampling=SamplingDefaults(max_tokens=16))
    yield pool
    pool.stop()


@pytest.fixture()
def make_client(served_run):
    """In-process TestClient for an app over the shared engine with a given config."""
    from fastapi.testclient import TestClient

    from medllm.serve import create_app

    clients = []

    def make(config: ServeConfig | None = None, **kw):
        app = create_app(config or ServeConfig(), served_run, **kw)
        c = TestClient(app, raise_server_exceptions=False)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture()
def loopback(served_run):
    """Start ``create_app(config, served_run)`` on 127.0.0.1; yields a starter."""
    from medllm.serve import create_app

    servers = []

    def start(config: ServeConfig | None = None, **kw) -> LoopbackServer:
        srv = LoopbackServer(create_app(config or ServeConfig(), served_run, **kw)).__enter__()
        servers.append(srv)
        return srv

    yield start
    for s in servers:
        s.__exit__(None, None, None)
