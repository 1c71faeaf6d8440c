"""`medllm export` of a trained run: merged HF folder equals base+adapter, GGUF and
Modelfile carry the merged weights and the run's sampling defaults; bad input is refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from medllm.cli.main import app
from medllm.io import sha256_file

PROMPT = [{"role": "user", "content": "What are the symptoms of anaemia?"}]


@pytest.fixture(scope="module")
def run_export(lora_run, tmp_path_factory):
    from medllm.export import export_model

    out = tmp_path_factory.mktemp("export") / "bundle"
    record = export_model(lora_run, out, formats="all", gguf_type="f16")
    return out, record


def test_export_record_lists_every_file_with_its_hash(run_export, lora_run):
    out, record = run_export
    assert record == json.loads((out / "export.json").read_text())
    assert record["formats"] == ["hf", "gguf", "ollama"] and record["source"]["stage"] == "sft"
    assert record["source"]["adapter"].endswith("stages/sft/adapter")
    on_disk = {str(f.relative_to(out)) for f in out.rglob("*") if f.is_file()} - {"export.json"}
    assert set(record["files"]) == on_disk
    assert {"hf/model.safetensors", "hf/config.json", "hf/tokenizer.json", "model-f16.gguf", "Modelfile"} <= on_disk
    for name, digest in record["files"].items():
        assert sha256_file(out / name) == digest, name


def test_merged_hf_folder_matches_base_plus_adapter(run_export, tiny_model_dir, lora_adapter, tiny_tokenizer):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = run_export
    merged = AutoModelForCausalLM.from_pretrained(out / "hf", dtype=torch.float32)   # no peft, no medllm
    assert not (out / "hf" / "adapter_config.json").exists()
    tok = AutoTokenizer.from_pretrained(out / "hf")
    ids = tok.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    assert ids.tolist() == tiny_tokenizer.apply_chat_template(
        PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"].tolist()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        base_logits = base(ids).logits
        peft_logits = PeftModel.from_pretrained(base, lora_adapter).eval()(ids).logits
        merged_logits = merged(ids).logits
    assert torch.allclose(merged_logits, peft_logits, atol=1e-4)
    assert (merged_logits - base_logits).abs().max() > 1e-2   # the adapter really was applied


def test_gguf_and_modelfile_carry_merged_weights_and_run_sampling(run_export, gguf_reader):
    import gguf
    from safetensors.numpy import load_file

    from medllm.export.gguf_llama import from_interleaved_rope

    out, _ = run_export
    reader = gguf_reader(out / "model-f16.gguf")
    q = next(t for t in reader.tensors if t.name == "blk.1.attn_q.weight")
    q = from_interleaved_rope(gguf.quants.dequantize(q.data, q.tensor_type).astype(np.float32), 4)
    merged = load_file(out / "hf" / "model.safetensors")["model.layers.1.self_attn.q_proj.weight"]
    assert np.array_equal(q, merged.astype(np.float16).astype(np.float32))
    assert reader.fields["general.sampling.temp"].contents() == pytest.approx(0.3)   # from the run's recipe
    modelfile = (out / "Modelfile").read_text()
    assert "FROM ./model-f16.gguf\n" in modelfile
    assert "PARAMETER temperature 0.3\n" in modelfile and "PARAMETER top_k 20\n" in modelfile
    assert "PARAMETER repeat_penalty 1.2\n" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile


def test_cli_export_hf_and_safe_output_folder(tmp_path):
    runner = CliRunner()
    out = tmp_path / "exp"
    result = runner.invoke(app, ["export", "tiny-llama", "--out", str(out), "--format", "hf", "--dtype", "bfloat16"])
    assert result.exit_code == 0, result.output
    assert not list(out.glob("*.gguf"))
    from safetensors import safe_open

    with safe_open(out / "hf" / "model.safetensors", "pt") as f:
        assert f.get_tensor("model.norm.weight").dtype.is_floating_point and \
            str(f.get_tensor("model.norm.weight").dtype) == "torch.bfloat16"
    # an earlier export may be replaced ...
    result = runner.invoke(app, ["export", "tiny-llama", "--out", str(out), "--format", "hf"])
    assert result.exit_code == 0, result.output
    # ... but a folder holding anything else is never wiped
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("important")
    result = runner.invoke(app, ["export", "tiny-llama", "--out", str(other)])
    assert result.exit_code == 1 and "not an earlier medllm export" in result.output
    assert (other / "keep.txt").read_text() == "important"
    result = runner.invoke(app, ["export", "tiny-llama", "--out", str(tmp_path / "x"), "--format", "onnx"])
    assert result.exit_code == 1 and "unknown export format 'onnx'" in result.output
    assert not (tmp_path / "x").exists()


def test_format_selection():
    from medllm.export import ExportError
    from medllm.export.bundle import _parse_formats

    assert _parse_formats("all") == ["hf", "gguf", "ollama"]
    assert _parse_formats("ollama") == ["gguf", "ollama"]   # a Modelfile needs its GGUF
    assert _parse_formats("GGUF, hf") == ["hf", "gguf"]
    with pytest.raises(ExportError, match="no export format"):
        _parse_formats(",")
