"""GGUF export round-trips through gguf.GGUFReader to the HF model's tensors and metadata."""
from __future__ import annotations

import json

import numpy as np
import pytest

from medllm.export import ExportError
from medllm.export.gguf_llama import from_interleaved_rope, to_interleaved_rope

HF_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def hf_name(gguf_name: str) -> str:
    """Independent reverse mapping (not the exporter's table) for the round trip."""
    if gguf_name in HF_NAMES:
        return HF_NAMES[gguf_name]
    _, layer, part, suffix = gguf_name.split(".")
    return f"model.layers.{layer}.{HF_NAMES[part]}.{suffix}"


@pytest.fixture(scope="module")
def hf_state(tiny_model_dir):
    from safetensors.numpy import load_file

    return load_file(tiny_model_dir / "model.safetensors")


@pytest.fixture(scope="module")
def hf_config(tiny_model_dir):
    return json.loads((tiny_model_dir / "config.json").read_text())


def read_tensors(reader, hf_config):
    """name -> (ggml type name, fp32 array in HF layout)."""
    import gguf

    out = {}
    for t in reader.tensors:
        arr = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if t.name.endswith("attn_q.weight"):
            arr = from_interleaved_rope(arr, hf_config["num_attention_heads"])
        elif t.name.endswith("attn_k.weight"):
            arr = from_interleaved_rope(arr, hf_config["num_key_value_heads"])
        out[t.name] = (t.tensor_type.name, arr)
    return out


def test_rope_permutation_is_an_interleave_and_invertible():
    w = np.arange(2 * 8 * 3, dtype=np.float32).reshape(16, 3)   # 2 heads x head_dim 8
    p = to_interleaved_rope(w, 2)
    # head 0: rows 0..3 (first half) and 4..7 (second half) alternate
    assert [int(r[0] // 3) for r in p[:8]] == [0, 4, 1, 5, 2, 6, 3, 7]
    assert np.array_equal(from_interleaved_rope(p, 2), w)


def test_f16_round_trip_is_exact_after_fp16_cast(gguf_exports, gguf_reader, hf_state, hf_config):
    tensors = read_tensors(gguf_reader(gguf_exports["f16"]), hf_config)
    assert len(tensors) == 1 + 1 + 9 * hf_config["num_hidden_layers"]   # tied: no output.weight
    assert set(map(hf_name, tensors)) == set(hf_state)
    for name, (qtype, arr) in tensors.items():
        ref = hf_state[hf_name(name)]
        if ref.ndim == 1:
            assert qtype == "F32" and np.array_equal(arr, ref), name
        else:
            assert qtype == "F16" and np.array_equal(arr, ref.astype(np.float16).astype(np.float32)), name


@pytest.mark.parametrize("gguf_type, levels", [("q8_0", 127), ("q4_0", 8)])
def test_quantized_round_trip_within_block_tolerance(gguf_exports, gguf_reader, hf_state, hf_config,
                                                     gguf_type, levels):
    tensors = read_tensors(gguf_reader(gguf_exports[gguf_type]), hf_config)
    for name, (qtype, arr) in tensors.items():
        ref = hf_state[hf_name(name)]
        if ref.ndim == 1:
            assert qtype == "F32" and np.array_equal(arr, ref)
            continue
        expected_type = "Q8_0" if (gguf_type == "q8_0" or name == "token_embd.weight") else "Q4_0"
        assert qtype == expected_type, name
        step = np.abs(ref.reshape(-1, 32)).max(axis=1, keepdims=True) / (127 if qtype == "Q8_0" else levels)
        err = np.abs(arr.reshape(-1, 32) - ref.reshape(-1, 32))
        # Rounding costs half a step; Q4_0 maps the block's signed extreme to -8, so a value of
        # the opposite sign near the extreme is clipped at +7 (up to one step). Plus the f16
        # rounding of the block scale.
        allowed = step * (0.5 if qtype == "Q8_0" else 1.0) + step * (127 if qtype == "Q8_0" else 8) * 2**-10
        assert (err <= allowed + 1e-7).all(), name
        assert err.max() > 0, f"{name}: a quantized tensor cannot be bit-identical to fp32 weights"


def test_metadata_describes_model_tokenizer_and_sampling(gguf_exports, gguf_reader, hf_config, tiny_tokenizer):
    import gguf

    r = gguf_reader(gguf_exports["q8_0"])
    f = {k: v.contents() for k, v in r.fields.items()}
    assert f["general.architecture"] == "llama"
    assert f["general.file_type"] == int(gguf.LlamaFileType.MOSTLY_Q8_0)
    assert f["llama.block_count"] == hf_config["num_hidden_layers"]
    assert f["llama.embedding_length"] == hf_config["hidden_size"]
    assert f["llama.feed_forward_length"] == hf_config["intermediate_size"]
    assert f["llama.attention.head_count"] == hf_config["num_attention_heads"]
    assert f["llama.attention.head_count_kv"] == hf_config["num_key_value_heads"]
    assert f["llama.context_length"] == hf_config["max_position_embeddings"]
    assert f["llama.rope.dimension_count"] == hf_config["head_dim"]
    assert f["llama.rope.freq_base"] == pytest.approx(hf_config["rope_parameters"]["rope_theta"])
    assert f["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(hf_config["rms_norm_eps"])
    assert f["tokenizer.ggml.model"] == "gpt2"
    tokens = f["tokenizer.ggml.tokens"]
    assert tokens == tiny_tokenizer.convert_ids_to_tokens(list(range(hf_config["vocab_size"])))
    types = f["tokenizer.ggml.token_type"]
    for tid in tiny_tokenizer.all_special_ids:
        assert types[tid] == int(gguf.TokenType.CONTROL), tiny_tokenizer.convert_ids_to_tokens(tid)
    assert types[tiny_tokenizer.convert_tokens_to_ids("Ġthe")] == int(gguf.TokenType.NORMAL)
    merges = f["tokenizer.ggml.merges"]
    assert merges[0] == "Ġ t" and len(merges) > 40_000
    assert f["tokenizer.ggml.bos_token_id"] == tiny_tokenizer.bos_token_id
    assert f["tokenizer.ggml.eos_token_id"] == tiny_tokenizer.eos_token_id == 2
    assert f["tokenizer.ggml.add_bos_token"] is False   # the ChatML template adds no BOS
    assert f["tokenizer.chat_template"] == tiny_tokenizer.chat_template
    assert f["general.sampling.temp"] == pytest.approx(0.6)
    assert f["general.sampling.top_k"] == 50
    assert f["general.sampling.penalty_repeat"] == pytest.approx(1.2)


def test_non_llama_architecture_is_refused(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from medllm.export import export_gguf

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100)).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ExportError, match="Llama-architecture.*GPT2LMHeadModel"):
        export_gguf(tmp_path / "gpt2", tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_unknown_gguf_type(tiny_model_dir, tmp_path):
    from medllm.export import export_gguf

    with pytest.raises(ExportError, match="unknown GGUF type 'q3_k'"):
        export_gguf(tiny_model_dir, tmp_path / "x.gguf", gguf_type="q3_k")


def test_tokenizer_metadata_equals_llama_cpps_own_conversion(gguf_exports, gguf_reader):
    """tiny-llama uses the SmolLM2 tokenizer; the embedded SmolLM2 GGUF was written by
    llama.cpp's converter, so its tokenizer fields are an independent reference."""
    from medllm.models.convert import ConversionError, locate_embedded_gguf

    try:
        reference = gguf_reader(locate_embedded_gguf())
    except ConversionError as exc:
        pytest.skip(str(exc))
    ours = gguf_reader(gguf_exports["f16"])
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id",
                "tokenizer.ggml.add_bos_token", "tokenizer.chat_template"):
        assert ours.fields[key].contents() == reference.fields[key].contents(), key
