"""Where a model's shape comes from without loading it: its config.json, or a known preset."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path


class PlanError(ValueError):
    pass


@dataclass(frozen=True)
class ModelShape:
    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ff: int
    vocab: int
    tied: bool
    dtype: str = "bfloat16"   # the checkpoint's own dtype (``auto`` resolves to it)
    source: str = ""          # where the shape was read from

    # Linear layers of one decoder block: name -> (in, out).
    def linears(self) -> dict[str, tuple[int, int]]:
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {"q_proj": (self.hidden, q), "k_proj": (self.hidden, kv), "v_proj": (self.hidden, kv),
                "o_proj": (q, self.hidden), "gate_proj": (self.hidden, self.ff), "up_proj": (self.hidden, self.ff),
                "down_proj": (self.ff, self.hidden)}

    @property
    def linear_params(self) -> int:
        """Decoder-block linear weights: what NF4 quantizes."""
        return self.layers * sum(i * o for i, o in self.linears().values())

    @property
    def other_params(self) -> int:
        """Embedding, untied head and norms: kept in the compute dtype under QLoRA."""
        head = 0 if self.tied else self.vocab * self.hidden
        return self.vocab * self.hidden + head + (2 * self.layers + 1) * self.hidden

    @property
    def params(self) -> int:
        return self.linear_params + self.other_params


def _shape(name, h, layers, heads, kv, ff, vocab, tied, dtype="bfloat16") -> ModelShape:
    return ModelShape(name, h, layers, heads, kv, h // heads, ff, vocab, tied, dtype, f"preset {name}")


# Published shapes (config.json of each model), matched by name when the folder is not here.
PRESETS: list[tuple[str, ModelShape]] = [
    (r"llama.?3.*70b", _shape("llama-3-70b", 8192, 80, 64, 8, 28672, 128256, False)),
    (r"llama.?3.*8b", _shape("llama-3-8b", 4096, 32, 32, 8, 14336, 128256, False)),
    (r"llama.?2.*70b", _shape("llama-2-70b", 8192, 80, 64, 8, 28672, 32000, False, "float16")),
    (r"llama.?2.*13b", _shape("llama-2-13b", 5120, 40, 40, 40, 13824, 32000, False, "float16")),
    (r"llama.?2.*7b", _shape("llama-2-7b", 4096, 32, 32, 32, 11008, 32000, False, "float16")),
    (r"smollm2.*135m", _shape("smollm2-135m", 576, 30, 9, 3, 1536, 49152, True)),
]


def shape_from_config(cfg: dict, name: str, source: str) -> ModelShape:
    try:
        h, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        return ModelShape(
            name=name, hidden=h, layers=int(cfg["num_hidden_layers"]), heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads), head_dim=int(cfg.get("head_dim") or h // heads),
            ff=int(cfg["intermediate_size"]), vocab=int(cfg["vocab_size"]),
            tied=bool(cfg.get("tie_word_embeddings", False)),
            dtype=str(cfg.get("dtype") or cfg.get("torch_dtype") or "bfloat16"), source=source)
    except KeyError as exc:
        raise PlanError(f"{source}: config has no {exc.args[0]!r} (only decoder-only Llama-like shapes are planned)")


def read_config_file(path: Path, name: str | None = None) -> ModelShape:
    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PlanError(f"{path}: cannot read model config ({exc})")
    return shape_from_config(cfg.get("text_config", cfg), name or Path(path).parent.name, str(path))


def preset_for(spec: str) -> ModelShape | None:
    low = spec.lower()
    for pattern, shape in PRESETS:
        if re.search(pattern, low):
            return shape
    return None


def read_shape(spec: str, model_config: Path | None = None) -> ModelShape:
    """Shape of ``spec`` (registry name, HF folder, or an absent path named like a known model)."""
    from medllm.models.registry import TINY_CONFIGS, models_dir

    if model_config is not None:
        return read_config_file(model_config, spec)
    if spec in TINY_CONFIGS:   # built on first use with the SmolLM2 tokenizer (vocab 49152, tied)
        local = models_dir() / spec / "config.json"
        if local.is_file():
            return read_config_file(local, spec)
        return shape_from_config({**TINY_CONFIGS[spec], "vocab_size": 49152, "tie_word_embeddings": True,
                                  "dtype": "float32"}, spec, f"registry {spec}")
    path = Path(spec).expanduser()
    for candidate in (path / "config.json", models_dir() / spec / "config.json"):
        try:
            if candidate.is_file():
                return read_config_file(candidate, spec)
        except OSError:
            pass
    preset = preset_for(spec)
    if preset is None:
        raise PlanError(f"model {spec!r}: no config.json here and no known shape matches its name "
                        f"({', '.join(s.name for _, s in PRESETS)}); pass --model-config FILE")
    return preset
