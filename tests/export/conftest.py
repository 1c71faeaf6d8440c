"""Fixtures for export/chat tests: a LoRA adapter on tiny-llama, a run folder whose
final stage recorded it, and GGUF exports made once per session."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lora_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter with non-zero B matrices, so merging visibly changes the weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj"],
                     init_lora_weights=False)
    peft_model = get_peft_model(base, cfg)
    with torch.no_grad():   # larger deltas than peft's random init, so a missing merge cannot hide
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    peft_model.save_pretrained(out)
    return out


def _make_run(root: Path, stages: dict, recipe: str | None = None) -> Path:
    run = root / "runs" / "demo-run"
    (run / "stages").mkdir(parents=True, exist_ok=True)
    (run / "state.json").write_text(json.dumps({"stages": stages}))
    if recipe is not None:
        (run / "recipe.yaml").write_text(recipe)
    return run


@pytest.fixture
def make_run():
    """Factory: make_run(root, stages_dict, recipe_yaml=None) -> run folder."""
    return _make_run


@pytest.fixture(scope="session")
def lora_run(tiny_model_dir, lora_adapter, tmp_path_factory) -> Path:
    """runs/demo-run: pretrain done (no adapter), sft done with the adapter, dpo failed."""
    import shutil

    root = tmp_path_factory.mktemp("runs_root")
    run = _make_run(root, {
        "pretrain": {"status": "done", "model_dir": str(tiny_model_dir)},
        "sft": {"status": "done", "model_dir": str(tiny_model_dir), "adapter_dir": "stages/sft/adapter"},
        "dpo": {"status": "failed", "model_dir": str(tiny_model_dir), "adapter_dir": "stages/dpo/adapter"},
    }, recipe="name: demo-run\nserve:\n  sampling:\n    temperature: 0.3\n    top_k: 20\n")
    shutil.copytree(lora_adapter, run / "stages" / "sft" / "adapter")
    return run


@pytest.fixture(scope="session")
def gguf_exports(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    from medllm.export import export_gguf

    out = tmp_path_factory.mktemp("gguf")
    sampling = {"temperature": 0.6, "top_p": 0.9, "top_k": 50, "repetition_penalty": 1.2}
    return {t: export_gguf(tiny_model_dir, out / f"tiny-{t}.gguf", gguf_type=t, sampling=sampling)
            for t in ("f16", "q8_0", "q4_0")}


@pytest.fixture(scope="session")
def gguf_reader():
    """Cached gguf.GGUFReader per file: parsing 49k token strings costs seconds each time."""
    import functools

    import gguf

    return functools.lru_cache(maxsize=None)(lambda path: gguf.GGUFReader(path))


@pytest.fixture(scope="session")
def sharp_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """tiny-llama with every matrix scaled x6, in fp32: its greedy output is varied text
    with clear top-1 margins, where the plain random model only repeats a newline."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(6)
    out = tmp_path_factory.mktemp("sharp") / "sharp-tiny"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out
