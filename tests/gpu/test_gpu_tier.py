"""GPU tier: a random Llama with Llama-3-8B shapes (built from a config, nothing downloaded),
trained, evaluated and merged on CUDA; peak GPU memory and tokens/s recorded next to the
``medllm plan`` estimate in bench/results/gpu_tier-<time>.json (run by scripts/gpu-check.sh).

Skips cleanly without CUDA. MEDLLM_GPU_LAYERS (default 32) shortens the model for a quick try.
The vocabulary is SmolLM2's (49152, so chat templates and special tokens are real), not
Llama-3's 128256: the model has ~7.3 B parameters; the plan is computed for that exact shape.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (scripts/gpu-check.sh)")]

ROOT = Path(__file__).resolve().parents[2]
LAYERS = int(os.environ.get("MEDLLM_GPU_LAYERS", "32"))
RESULTS: dict = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stages": {}}
STEP = dict(max_steps=3, batch_size=4, grad_accum=1, max_seq_len=512, bf16="true", log_every=1,
            gradient_checkpointing=True, lr=1e-4, length_grouping=False)


def _rows(n: int = 32) -> list[dict]:
    note = "Patient with hypertension, started on an ACE inhibitor; review renal function in two weeks. "
    return [{"messages": [{"role": "user", "content": f"Summarise case {i}: " + note * 8},
                          {"role": "assistant", "content": note * 4}]} for i in range(n)]


@pytest.fixture(scope="module")
def results():
    yield RESULTS
    out = Path(os.environ.get("MEDLLM_GPU_RESULTS", ROOT / "bench" / "results"))
    out.mkdir(parents=True, exist_ok=True)
    RESULTS["device"] = torch.cuda.get_device_name(0)
    RESULTS["torch"] = torch.__version__
    path = out / f"gpu_tier-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.json"
    from medllm.io import atomic_write_json

    atomic_write_json(path, RESULTS)


@pytest.fixture(scope="module")
def big_model(tmp_path_factory, results):
    """Random bf16 Llama with 8B shapes, built on the GPU and saved as safetensors."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from medllm.models.convert import smollm2_tokenizer_dir, write_manifest
    from medllm.plan.shapes import PRESETS

    l3 = dict(PRESETS)[r"llama.?3.*8b"]
    tok = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=l3.hidden, num_hidden_layers=LAYERS,
                      num_attention_heads=l3.heads, num_key_value_heads=l3.kv_heads, intermediate_size=l3.ff,
                      max_position_embeddings=8192, rope_theta=500000.0, rms_norm_eps=1e-5,
                      tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    folder = tmp_path_factory.mktemp("llama8b-shape")
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    write_manifest(folder, {"type": "random", "shape": "llama-3-8b", "layers": LAYERS})
    results["model"] = {"shape": "llama-3-8b", "layers": LAYERS, "vocab": len(tok),
                        "params": sum(p.numel() for p in model.parameters()),
                        "build_seconds": round(time.perf_counter() - t0, 1)}
    del model
    torch.cuda.empty_cache()
    return folder


def _train(name, method, big_model, tmp_path, results):
    from datasets import Dataset

    from medllm.config.train import SFTStage
    from medllm.plan import Device, estimate_stage, read_shape
    from medllm.plan.estimate import CUDA_OVERHEAD_GB
    from medllm.train import run_stage

    stage = SFTStage(data=["d"], adapter={"method": method, "target_modules": "all-linear"}, **STEP)
    shape = read_shape(str(big_model))
    plan = estimate_stage(name, stage, shape, dtype="bfloat16", device=Device(mem_gb=139))
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    res = run_stage(name, stage, base_model=big_model, datasets={"d": Dataset.from_list(_rows())},
                    out_dir=tmp_path / name)
    peak = torch.cuda.max_memory_allocated() / 1e9    # excludes the CUDA context: compare without it
    estimate = plan.total_gb - CUDA_OVERHEAD_GB
    results["stages"][name] = {"method": method, "micro_batch": stage.batch_size, "seq_len": stage.max_seq_len,
                               "peak_gpu_gb": round(peak, 2), "plan_gb": round(estimate, 2),
                               "plan_memory_gb": plan.memory_gb, "ratio_plan_to_peak": round(estimate / peak, 3),
                               "tokens_per_s": res.metrics.get("tokens_per_s"),
                               "plan_tokens_per_s": plan.tokens_per_s, "seconds": res.metrics.get("seconds")}
    assert res.metrics["params_changed"] is True
    assert 0.5 <= estimate / peak <= 1.5, results["stages"][name]   # gross errors fail; the figure is recorded
    return res


def test_lora_step_merge_and_eval(big_model, tmp_path_factory, results):
    from medllm.eval.backends import HFBackend
    from medllm.eval.prompts import LoglikRequest
    from medllm.models import model_device

    tmp = tmp_path_factory.mktemp("lora")
    res = _train("lora", "lora", big_model, tmp, results)
    merged = res.model_dir
    assert json.loads((merged / "config.json").read_text())["hidden_size"] == 4096
    assert list(merged.glob("*.safetensors"))
    torch.cuda.reset_peak_memory_stats()
    backend = HFBackend(merged, batch_size=4, dtype="bfloat16")
    assert model_device(backend.model).type == "cuda"
    t0 = time.perf_counter()
    scores = backend.loglik([LoglikRequest("The patient's blood pressure is", [" high", " a banana"])])
    outs = backend.generate([[{"role": "user", "content": "Name one antihypertensive drug."}]], max_new_tokens=16)
    results["eval"] = {"seconds": round(time.perf_counter() - t0, 2),
                       "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2)}
    assert all(torch.isfinite(torch.tensor(s)) for s, _ in scores[0]) and isinstance(outs[0], str)
    assert res.adapter_dir is not None and (res.adapter_dir / "adapter_config.json").is_file()
    del backend
    torch.cuda.empty_cache()


def test_qlora_step(big_model, tmp_path_factory, results):
    pytest.importorskip("bitsandbytes")
    _train("qlora", "qlora", big_model, tmp_path_factory.mktemp("qlora"), results)
    assert results["stages"]["qlora"]["peak_gpu_gb"] < results["stages"].get("lora", {}).get("peak_gpu_gb", 1e9)
