"""``medllm serve --check``: the base model and every adapter of a lineage are verified against the
sha256 manifests the stages wrote; one flipped byte or an unlisted file refuses the start."""
from __future__ import annotations

import json
import shutil

import pytest

from medllm.serve.models import check_served


def _lora_stage(base, stage_dir, seed):
    """A LoRA stage folder written by the project's own save path (adapter/ + model.json)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from medllm.models import load_causal_lm
    from medllm.train.adapters import save_outputs

    torch.manual_seed(seed)
    model, tok = load_causal_lm(base, dtype="float32", device="cpu")
    peft = get_peft_model(model, LoraConfig(r=2, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))
    stage_dir.mkdir(parents=True)
    model_dir, adapter_dir = save_outputs(peft, tok, stage_dir, base_model=base, dtype="float32")
    assert model_dir == stage_dir and (stage_dir / "model.json").is_file()
    return adapter_dir


@pytest.fixture(scope="module")
def lineage(tiny_model_dir, tmp_path_factory):
    """A plain base copy (never the shared tiny model: bytes get flipped) and two stacked LoRA stages."""
    root = tmp_path_factory.mktemp("lineage")
    base = root / "base"
    shutil.copytree(tiny_model_dir, base)
    a1 = _lora_stage(base, root / "sft", 0)
    a2 = _lora_stage(root / "sft", root / "dpo", 1)
    lin = json.loads((root / "dpo" / "model.json").read_text())
    assert lin["base"] == str(base.resolve()) and lin["adapters"] == [str(a1.resolve()), str(a2.resolve())]
    return root


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture()
def flipped():
    """Flip one byte of a file, restore it afterwards (the lineage is shared by the tests)."""
    saved = {}

    def flip(path):
        saved[path] = path.read_bytes()
        _flip(path)

    yield flip
    for path, data in saved.items():
        path.write_bytes(data)


def test_untouched_lineage_passes(lineage):
    assert check_served(lineage / "dpo") == []
    assert check_served(lineage / "sft") == []


@pytest.mark.parametrize("part", ["base/model.safetensors", "sft/adapter/adapter_model.safetensors",
                                  "dpo/adapter/adapter_model.safetensors", "sft/adapter/adapter_config.json"])
def test_one_flipped_byte_anywhere_in_the_lineage_is_refused(lineage, flipped, part):
    target = lineage / part
    flipped(target)
    problems = check_served(lineage / "dpo")
    # one problem, naming the file: an earlier stage's adapter and the base are read too, not only dpo/
    assert len(problems) == 1 and str(target) in problems[0] and "sha256 mismatch" in problems[0], problems


def test_unlisted_file_and_missing_manifest_are_refused(lineage):
    extra = lineage / "dpo" / "adapter" / "adapter_model.bin"
    extra.write_bytes(b"pickle")
    try:
        problems = check_served(lineage / "dpo")
        assert len(problems) == 1 and str(extra) in problems[0] and "not listed" in problems[0]
    finally:
        extra.unlink()
    man = lineage / "base" / "medllm_manifest.json"
    saved = man.read_bytes()
    man.unlink()
    try:
        problems = check_served(lineage / "sft")
        assert len(problems) == 1 and str(man) in problems[0] and "missing" in problems[0]
    finally:
        man.write_bytes(saved)
    assert check_served(lineage / "dpo") == []


def test_run_folder_checks_every_stage_adapter_and_its_base(lineage, flipped, tmp_path):
    run = tmp_path / "demo"
    run.mkdir()
    stages = {s: {"status": "done", "model_dir": str(lineage / s), "adapter_dir": str(lineage / s / "adapter"),
                  "base_model": str(lineage / b)} for s, b in (("sft", "base"), ("dpo", "sft"))}
    (run / "state.json").write_text(json.dumps({"stages": stages}))
    assert check_served(run) == []
    flipped(lineage / "sft" / "adapter" / "adapter_model.safetensors")
    problems = check_served(run)
    assert problems and all("sft/adapter/adapter_model.safetensors" in p for p in problems)


def test_cli_refuses_to_start_naming_the_file_and_starts_when_intact(lineage, flipped, monkeypatch):
    from typer.testing import CliRunner

    import medllm.serve.cli as serve_cli
    from medllm.cli.main import app
    from medllm.serve.models import ServeModelError

    def no_engine(*a, **k):   # stop right after the check instead of loading and serving
        raise ServeModelError("engine start skipped by the test")

    monkeypatch.setattr(serve_cli, "_engine_pool", no_engine)
    runner = CliRunner()
    r = runner.invoke(app, ["serve", str(lineage / "dpo"), "--check"])
    assert r.exit_code == 1 and "model files verified" in r.output and "engine start skipped" in r.output, r.output
    weights = lineage / "base" / "model.safetensors"
    flipped(weights)
    r = runner.invoke(app, ["serve", str(lineage / "dpo"), "--check"])
    out = "".join(r.output.split())   # rich wraps long paths; compare without whitespace
    assert r.exit_code == 1 and "refusingtoserve" in out and "".join(str(weights).split()) in out, r.output
    assert "model files verified" not in r.output and "engine start skipped" not in r.output
