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


def _gguf_name(hf_name: str, hp: dict, names) -> str | None:
    """GGUF name of one HF tensor, or None for tensors llama.cpp does not read."""
    if hf_name.endswith("rotary_emb.inv_freq"):
        return None   # recomputed by llama.cpp from rope.freq_base
    if hf_name == "lm_head.weight" and hp["tied"]:
        return None   # tied: llama.cpp reuses token_embd as the output head
    name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise ExportError(f"no GGUF name for tensor {hf_name!r} (not a plain Llama weight)")
    return name


def _to_gguf_layout(name: str, arr: np.ndarray, hp: dict) -> np.ndarray:
    if name.endswith("attn_q.weight"):
        return to_interleaved_rope(arr, hp["n_head"])
    if name.endswith("attn_k.weight"):
        return to_interleaved_rope(arr, hp["n_head_kv"])
    return arr


def _tensor_plan(state: dict, hp: dict) -> list[tuple[str, np.ndarray]]:
    """(gguf name, fp32 array in GGUF layout) for every weight of an in-memory state dict
    (kept for callers holding a model; the exporter itself streams from the files)."""
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, hp["n_layer"])
    plan = []
    for hf_name, tensor in state.items():
        name = _gguf_name(hf_name, hp, names)
        if name is not None:
            plan.append((name, _to_gguf_layout(name, tensor.detach().to("cpu").float().numpy(), hp)))
    return plan


def _llama3_rope_factors(config) -> np.ndarray:
    """Per-frequency divisors llama.cpp applies for Llama-3.1-style rope scaling
    (``rope_freqs.weight``): base inverse frequency / scaled inverse frequency."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    hp = _hparams(config)
    base = 1.0 / (hp["theta"] ** (np.arange(0, hp["head_dim"], 2, dtype=np.float64) / hp["head_dim"]))
    return (base / scaled.double().numpy()).astype(np.float32)


def _target_type(name: str, shape: tuple, gguf_type: str):
    """The ggml type one tensor is stored as: 1-D (norms) f32, rows not a multiple of the
    quantization block f16, else the requested type."""
    import gguf

    if len(shape) == 1:
        return gguf.GGMLQuantizationType.F32
    qtype = {"q8_0": gguf.GGMLQuantizationType.Q8_0, "q4_0": gguf.GGMLQuantizationType.Q4_0}.get(gguf_type)
    # The embedding doubles as the output head for tied models; 4-bit there costs the most
    # quality for the fewest bytes saved, so Q4_0 exports keep it at Q8_0.
    if qtype == gguf.GGMLQuantizationType.Q4_0 and name in ("token_embd.weight", "output.weight"):
        qtype = gguf.GGMLQuantizationType.Q8_0
    if qtype is None or shape[-1] % QUANT_BLOCK:
        return gguf.GGMLQuantizationType.F16
    return qtype


_NP_OF = {"F32": np.float32, "F16": np.float16}
ROW_CHUNK_VALUES = 1 << 22   # ~4M values (16 MB of fp32) converted at a time


def _encode(name: str, arr: np.ndarray, gguf_type: str):
    """Return (data, raw_dtype or None) for one tensor at the requested precision."""
    import gguf

    qtype = _target_type(name, arr.shape, gguf_type)
    if qtype == gguf.GGMLQuantizationType.F32:
        return arr.astype(np.float32), None
    if qtype == gguf.GGMLQuantizationType.F16:
        return arr.astype(np.float16), None
    return _encode_rows(arr, qtype), qtype


def _encode_rows(arr: np.ndarray, qtype) -> np.ndarray:
    """Quantize row chunks into one preallocated buffer: ggml blocks never cross a row, so
    this equals quantizing the whole tensor, without its full-size fp32 intermediates."""
    import gguf

    rows = arr.reshape(-1, arr.shape[-1])
    out = np.empty(gguf.quant_shape_to_byte_shape(arr.shape, qtype), dtype=np.uint8)
    flat_out = out.reshape(rows.shape[0], -1)
    step = max(1, ROW_CHUNK_VALUES // rows.shape[1])
    for i in range(0, rows.shape[0], step):
        flat_out[i:i + step] = gguf.quants.quantize(np.ascontiguousarray(rows[i:i + step], dtype=np.float32), qtype)
    return out


class SafetensorsStream:
    """Tensors of a safetensors folder read one at a time with plain file reads (no mmap,
    so pages already converted do not stay resident), as fp32 numpy arrays."""

    def __init__(self, folder: Path):
        import json
        import struct

        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise ExportError(f"{folder}: no .safetensors weights to export")
        self.index: dict[str, tuple[Path, str, list, int, int]] = {}
        for f in files:
            with open(f, "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(n))
            for key, meta in header.items():
                if key == "__metadata__":
                    continue
                if meta["dtype"] not in ("F32", "F16", "BF16"):
                    raise ExportError(f"{f}: tensor {key} has dtype {meta['dtype']}; GGUF export reads "
                                      "float32/float16/bfloat16 weights (dequantize a 4-bit model first)")
                a, b = meta["data_offsets"]
                self.index[key] = (f, meta["dtype"], meta["shape"], 8 + n + a, b - a)

    def names(self) -> list[str]:
        return list(self.index)

    def shape(self, key: str) -> tuple:
        return tuple(self.index[key][2])

    def read(self, key: str) -> np.ndarray:
        f, dtype, shape, start, nbytes = self.index[key]
        with open(f, "rb") as fh:
            fh.seek(start)
            raw = fh.read(nbytes)
        if dtype == "BF16":   # bf16 = the high half of an fp32
            arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=_NP_OF[dtype]).astype(np.float32)
        return arr.reshape(shape)


def export_gguf(model_dir: str | Path, out_file: str | Path, *, gguf_type: str = "f16",
                adapter: str | Path | list | None = None, name: str | None = None,
                sampling: dict | None = None) -> Path:
    """Write ``model_dir`` (+ merged ``adapter``, or a list of stacked adapters) as one GGUF
    file that llama.cpp loads.

    Memory stays bounded: tensors are read from the safetensors files, converted and written
    one at a time (never the whole model in fp32). With adapters, the merge happens first in
    the base model's dtype into a temporary folder next to the output, which is then streamed.
    ``gguf_type``: f16, q8_0 or q4_0. ``sampling`` is stored as default sampling metadata."""
    import shutil

    from medllm.export.hf import adapters_list, merge_to_folder

    if gguf_type not in GGUF_TYPES:
        raise ExportError(f"unknown GGUF type {gguf_type!r}; choose one of {', '.join(GGUF_TYPES)}")
    model_dir, out_file = Path(model_dir), Path(out_file)
    adapters = adapters_list(adapter)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if not adapters:
        return _write_gguf(model_dir, model_dir, out_file, gguf_type, name, sampling)
    merged = Path(tempfile.mkdtemp(dir=out_file.parent, prefix=f".{out_file.name}.merged."))
    try:
        merge_to_folder(model_dir, adapters, merged)
        return _write_gguf(model_dir, merged, out_file, gguf_type, name, sampling)
    finally:
        shutil.rmtree(merged, ignore_errors=True)


def _write_gguf(model_dir: Path, weights_dir: Path, out_file: Path, gguf_type: str, name: str | None,
                sampling: dict | None) -> Path:
    import gguf
    from transformers import AutoConfig

    from medllm.export.gguf_vocab import add_vocab, read_vocab
    from medllm.progress import progress

    config = AutoConfig.from_pretrained(str(weights_dir), trust_remote_code=False)
    hp = _hparams(config)
    vocab = read_vocab(model_dir, hp["vocab_size"])   # fail on the tokenizer before the slow part
    stream = SafetensorsStream(weights_dir)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, hp["n_layer"])
    plan = [(hf, gn) for hf in stream.names() if (gn := _gguf_name(hf, hp, names)) is not None]
    extra = [("rope_freqs.weight", _llama3_rope_factors(config))] if hp["rope_type"] == "llama3" else []

    fd, tmp = tempfile.mkstemp(dir=out_file.parent, prefix=f".{out_file.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
        _add_metadata(writer, hp, vocab, gguf_type, name or model_dir.name, sampling, add_vocab)
        # Tensor infos first (shapes and sizes are known from the headers), then each
        # tensor's data converted and written in turn.
        for hf_name, gname in plan:
            shape = stream.shape(hf_name)
            qtype = _target_type(gname, shape, gguf_type)
            if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
                np_dtype = np.float32 if qtype == gguf.GGMLQuantizationType.F32 else np.float16
                writer.add_tensor_info(gname, shape, np.dtype(np_dtype), int(np.prod(shape)) * np.dtype(np_dtype).itemsize)
            else:
                byte_shape = gguf.quant_shape_to_byte_shape(shape, qtype)
                writer.add_tensor_info(gname, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), raw_dtype=qtype)
        for gname, arr in extra:
            writer.add_tensor_info(gname, arr.shape, arr.dtype, arr.nbytes)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for hf_name, gname in progress(plan, desc=f"GGUF {gguf_type}", unit="tensor"):
            arr = _to_gguf_layout(gname, stream.read(hf_name), hp)
            data, _ = _encode(gname, arr, gguf_type)
            del arr
            writer.write_tensor_data(data)
            del data
        for _, arr in extra:
            writer.write_tensor_data(arr)
        writer.close()
        os.replace(tmp, out_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("GGUF %s written to %s", gguf_type, out_file)
    return out_file


def _add_metadata(writer, hp: dict, vocab, gguf_type: str, name: str, sampling: dict | None, add_vocab) -> None:
    import gguf

    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
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
