"""The ``serve:`` section: defaults for ``medllm serve`` on a run."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from medllm.config.base import Section


class SamplingDefaults(Section):
    # ClinMED-LLaMA3's published deployment defaults.
    temperature: float = Field(default=0.6, ge=0)
    top_p: float = Field(default=0.9, gt=0, le=1)
    top_k: int = Field(default=50, ge=0)
    repetition_penalty: float = Field(default=1.2, gt=0)
    max_tokens: int = Field(default=512, gt=0)


class ServeConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)
    api_keys_file: str | None = None
    audit_log: str | None = None
    audit_full_text: bool = False
    audit_key_file: str | None = None        # HMAC key of the audit chain (default: <audit_log>.key, created 0600)
    audit_deid: bool = False                 # de-identify prompt/response before a full-text audit writes them
    audit_max_bytes: int | None = Field(default=None, gt=0)   # rotate the audit log past this size
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    max_prompt_tokens: int = Field(default=4096, gt=0)
    max_completion_tokens: int = Field(default=2048, gt=0)   # upper bound a request may ask for
    max_n: int = Field(default=4, gt=0)                      # choices per request
    rate_limit_per_minute: int = Field(default=60, gt=0)     # per API key, or per client address when anonymous
    max_queue: int = Field(default=64, gt=0)
    max_batch: int = Field(default=8, gt=0)
    safety_layer: bool = True
    # Binding a non-loopback address without API keys needs this explicit opt-in.
    allow_unauthenticated_remote: bool = False
    sampling: SamplingDefaults = Field(default_factory=SamplingDefaults)
    # --- where generation happens (see docs/deployment.md)
    # "medllm": the in-process engine (--backend picks transformers / llama.cpp / hybrid);
    # "vllm": a vLLM child process on loopback, medllm in front of it as the gateway.
    engine: Literal["medllm", "vllm"] = "medllm"
    tensor_parallel: int = Field(default=1, gt=0)             # vLLM --tensor-parallel-size
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_model_len: int | None = Field(default=None, gt=0)    # vLLM context length (default: the model's)
    engine_start_timeout_s: float = Field(default=900, gt=0)  # model load + CUDA graph capture
    # Gateway mode: proxy to an OpenAI-compatible server that is already running.
    upstream_url: str | None = None
    upstream_key_file: str | None = None                      # file holding the upstream's bearer key
    upstream_models: dict[str, str] = Field(default_factory=dict)   # id clients use -> upstream id
    upstream_connect_timeout_s: float = Field(default=5, gt=0)      # upstream down -> 503 after this
    upstream_read_timeout_s: float = Field(default=120, gt=0)       # longest silence between chunks
