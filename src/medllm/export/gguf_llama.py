"""GGUF export for Llama-architecture models (SmolLM2, Llama-3 family) with the
``gguf`` package: hyperparameters, tensor names, rotary layout, f16/Q8_0/Q4_0.

Two facts of the format shape this file:
- HF Llama applies rotary embeddings to the two *halves* of each head ("rotate_half"),
  llama.cpp's ``llama`` architecture to *adjacent pairs*; so the rows of the Q and K
  projections are reordered per head (``to_interleaved_rope``), and the reader-side
  inverse is ``from_interleaved_rope`` (used by the round-trip test).
- ggml quantizes along a row in blocks of 32 values; a tensor whose rows are not a
  multiple of 32 stays f16, and 1-D tensors (norms) stay f32 as llama.cpp expects.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from medllm.export.resolve import ExportError

log = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)
GGUF_TYPES = ("f16", "q8_0", "q4_0")
QUANT_BLOCK = 32


def _hparams(config) -> dict:
    arch = (getattr(config, "architectures", None) or ["?"])[0]
    if arch not in SUPPORTED_ARCHITECTURES or config.model_type != "llama":
        raise ExportError(f"GGUF export supports Llama-architecture models (SmolLM2, Llama-3 family); "
                          f"this model is {arch} (model_type {config.model_type!r}). "
                          "Export it as a merged HF folder (--format hf) instead.")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ExportError("GGUF export does not handle Llama variants with attention/MLP biases")
    n_head = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_head
    rope = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "linear", "llama3"):
        raise ExportError(f"rope type {rope_type!r} is not supported by the GGUF exporter (default, linear, llama3)")
    return dict(n_layer=config.num_hidden_layers, n_embd=config.hidden_size, n_ff=config.intermediate_size,
                n_head=n_head, n_head_kv=getattr(config, "num_key_value_heads", None) or n_head,
                head_dim=head_dim, n_ctx=config.max_position_embeddings, eps=config.rms_norm_eps,
                theta=float(theta), rope_type=rope_type, rope_factor=rope.get("factor"),
                vocab_size=config.vocab_size, tied=bool(getattr(config, "tie_word_embeddings", False)))


def to_interleaved_rope(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Rows [h, half, i] -> [h, i, half]: per head, pair dim i with dim i + d/2 side by side."""
    rows = w.shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def from_interleaved_rope(w: np.ndarray, n_heads: int) -> np.ndarray:
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tensor_plan(state: dict, hp: dict) -> list[tuple[str, np.ndarray]]:
    """(gguf name, fp32 array in GGUF layout) for every weight llama.cpp reads."""
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, hp["n_layer"])
    plan = []
    for hf_name, tensor in state.items():
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue   # recomputed by llama.cpp from rope.freq_base
        if hf_name == "lm_head.weight" and hp["tied"]:
            continue   # tied: llama.cpp reuses token_embd as the output head
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ExportError(f"no GGUF name for tensor {hf_name!r} (not a plain Llama weight)")
        arr = tensor.detach().to("cpu").float().numpy()
        if name.endswith("attn_q.weight"):
            arr = to_interleaved_rope(arr, hp["n_head"])
        elif name.endswith("attn_k.weight"):
            arr = to_interleaved_rope(arr, hp["n_head_kv"])
        plan.append((name, arr))
    return plan


def _llama3_rope_factors(config) -> np.ndarray:
    """Per-frequency divisors llama.cpp applies for Llama-3.1-style rope scaling
    (``rope_freqs.weight``): base inverse frequency / scaled inverse frequency."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    hp = _hparams(config)
    base = 1.0 / (hp["theta"] ** (np.arange(0, hp["head_dim"], 2, dtype=np.float64) / hp["head_dim"]))
    return (base / scaled.double().numpy()).astype(np.float32)


def _encode(name: str, arr: np.ndarray, gguf_type: str):
    """Return (data, raw_dtype or None) for one tensor at the requested precision."""
    import gguf

    if arr.ndim == 1:
        return arr.astype(np.float32), None
    qtype = {"q8_0": gguf.GGMLQuantizationType.Q8_0, "q4_0": gguf.GGMLQuantizationType.Q4_0}.get(gguf_type)
    # The embedding doubles as the output head for tied models; 4-bit there costs the most
    # quality for the fewest bytes saved, so Q4_0 exports keep it at Q8_0.
    if qtype == gguf.GGMLQuantizationType.Q4_0 and name in ("token_embd.weight", "output.weight"):
        qtype = gguf.GGMLQuantizationType.Q8_0
    if qtype is None or arr.shape[-1] % QUANT_BLOCK:
        return arr.astype(np.float16), None
    return gguf.quants.quantize(arr, qtype), qtype


def export_gguf(model_dir: str | Path, out_file: str | Path, *, gguf_type: str = "f16",
                adapter: str | Path | None = None, name: str | None = None,
                sampling: dict | None = None) -> Path:
    """Write ``model_dir`` (+ merged ``adapter``) as one GGUF file that llama.cpp loads.

    ``gguf_type``: f16, q8_0 or q4_0. ``sampling`` (temperature/top_p/top_k/
    repetition_penalty) is stored as the file's default sampling metadata."""
    import gguf

    from medllm.export.gguf_vocab import add_vocab, read_vocab
    from medllm.export.hf import load_merged
    from medllm.progress import progress

    if gguf_type not in GGUF_TYPES:
        raise ExportError(f"unknown GGUF type {gguf_type!r}; choose one of {', '.join(GGUF_TYPES)}")
    model_dir, out_file = Path(model_dir), Path(out_file)
    from transformers import AutoConfig

    hp = _hparams(AutoConfig.from_pretrained(str(model_dir), trust_remote_code=False))
    vocab = read_vocab(model_dir, hp["vocab_size"])   # fail on the tokenizer before the slow part
    model = load_merged(model_dir, adapter)
    plan = _tensor_plan(model.state_dict(), hp)
    if hp["rope_type"] == "llama3":
        plan.append(("rope_freqs.weight", _llama3_rope_factors(model.config)))
    del model

    out_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_file.parent, prefix=f".{out_file.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(name or model_dir.name)
        writer.add_block_count(hp["n_layer"])
        writer.add_context_length(hp["n_ctx"])
        writer.add_embedding_length(hp["n_embd"])
        writer.add_feed_forward_length(hp["n_ff"])
        writer.add_head_count(hp["n_head"])
        writer.add_head_count_kv(hp["n_head_kv"])
        writer.add_rope_dimension_count(hp["head_dim"])
        if hp["head_dim"] != hp["n_embd"] // hp["n_head"]:
            writer.add_key_length(hp["head_dim"])
            writer.add_value_length(hp["head_dim"])
        writer.add_rope_freq_base(hp["theta"])
        if hp["rope_type"] == "linear":
            writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            writer.add_rope_scaling_factor(float(hp["rope_factor"]))
        writer.add_layer_norm_rms_eps(hp["eps"])
        writer.add_vocab_size(len(vocab.tokens))
        writer.add_file_type({"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
                              "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[gguf_type])
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        if sampling:
            writer.add_sampling_temp(float(sampling["temperature"]))
            writer.add_sampling_top_p(float(sampling["top_p"]))
            writer.add_sampling_top_k(int(sampling["top_k"]))
            writer.add_sampling_penalty_repeat(float(sampling["repetition_penalty"]))
        add_vocab(writer, vocab)
        for tname, arr in progress(plan, desc=f"GGUF {gguf_type}", unit="tensor"):
            data, raw = _encode(tname, arr, gguf_type)
            writer.add_tensor(tname, data, raw_dtype=raw)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("GGUF %s written to %s", gguf_type, out_file)
    return out_file
