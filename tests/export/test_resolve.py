"""RUN_OR_MODEL resolution: which stage's model a run folder means, and clear errors."""
from __future__ import annotations

import json

import pytest

from medllm.export import ExportError, default_sampling, resolve_run_model


def test_run_folder_gives_last_done_stage_with_its_adapter(lora_run, tiny_model_dir):
    model_dir, adapter = resolve_run_model(lora_run)
    assert model_dir == tiny_model_dir
    # dpo failed, so sft (recorded relative to the run folder) is the final model
    assert adapter == (lora_run / "stages" / "sft" / "adapter").resolve()


def test_run_without_adapter_and_registry_name(tmp_path, tiny_model_dir, make_run):
    run = make_run(tmp_path, {"pretrain": {"status": "done", "model_dir": "tiny-llama"}})
    assert resolve_run_model(run) == (tiny_model_dir, None)
    assert resolve_run_model("tiny-llama") == (tiny_model_dir, None)
    assert resolve_run_model(str(tiny_model_dir)) == (tiny_model_dir, None)


def test_adapter_folder_alone_uses_its_base(lora_adapter, tiny_model_dir, tmp_path):
    import shutil

    adapter = tmp_path / "adapter"
    shutil.copytree(lora_adapter, adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tiny_model_dir)
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    assert resolve_run_model(adapter) == (tiny_model_dir, adapter.resolve())


def test_run_with_no_finished_stage_is_a_clear_error(tmp_path, make_run):
    run = make_run(tmp_path, {"sft": {"status": "running", "model_dir": "tiny-llama"}})
    with pytest.raises(ExportError, match="no finished stage.*sft.*running"):
        resolve_run_model(run)


def test_corrupt_state_json_names_file_and_line(tmp_path, make_run):
    run = make_run(tmp_path, {})
    (run / "state.json").write_text('{\n  "stages": {\n    "sft": \n}\n')
    with pytest.raises(ExportError, match=r"state\.json:4: not valid JSON"):
        resolve_run_model(run)


def test_missing_adapter_and_unknown_model(tmp_path, make_run):
    run = make_run(tmp_path, {"sft": {"status": "done", "model_dir": "tiny-llama", "adapter_dir": "nowhere"}})
    with pytest.raises(ExportError, match="adapter_config.json"):
        resolve_run_model(run)
    with pytest.raises(ExportError, match="unknown model"):
        resolve_run_model("no-such-model")


def test_sampling_defaults_come_from_the_run_recipe(lora_run):
    assert default_sampling(lora_run) == {"temperature": 0.3, "top_p": 0.9, "top_k": 20,
                                          "repetition_penalty": 1.2, "max_tokens": 512}
    assert default_sampling("tiny-llama")["temperature"] == 0.6
