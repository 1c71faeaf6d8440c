"""Ollama Modelfile next to an exported GGUF: the chat template in Ollama's Go template
syntax, the stop tokens and medllm's default sampling (ClinMED-LLaMA3's deployment
defaults unless the run's recipe overrides them).

Ollama cannot run Jinja, so the template is chosen by recognising the chat format
(ChatML or Llama-3 headers) in the model's Jinja template rather than translated
token by token."""
from __future__ import annotations

from pathlib import Path

from medllm.export.resolve import ExportError

CHATML = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n"
    "{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"
)
LLAMA3 = (
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
    "{{ .Content }}<|eot_id|>"
    "{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
)
FORMATS = {
    "chatml": (CHATML, ["<|im_end|>", "<|im_start|>"]),
    "llama3": (LLAMA3, ["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]),
}


def chat_format(chat_template: str | None) -> str:
    """'chatml' or 'llama3' for a Jinja chat template; ExportError otherwise."""
    if chat_template and "<|im_start|>" in chat_template and "<|im_end|>" in chat_template:
        return "chatml"
    if chat_template and "<|start_header_id|>" in chat_template and "<|eot_id|>" in chat_template:
        return "llama3"
    raise ExportError("the model's chat template is neither ChatML nor Llama-3 style, so no Ollama TEMPLATE "
                      "can be written for it" if chat_template else
                      "the model has no chat template; an Ollama Modelfile needs one")


def modelfile_text(gguf_name: str, chat_template: str | None, sampling: dict, *, system: str | None = None) -> str:
    template, stops = FORMATS[chat_format(chat_template)]
    lines = [
        "# Ollama Modelfile written by `medllm export`. Create the model with:",
        "#   ollama create NAME -f Modelfile",
        f"FROM ./{gguf_name}",
        f'TEMPLATE """{template}"""',
    ]
    if system:
        if '"""' in system:
            raise ExportError('the system prompt may not contain """ (Modelfile string delimiter)')
        lines.append(f'SYSTEM """{system}"""')
    lines += [
        f"PARAMETER temperature {sampling['temperature']}",
        f"PARAMETER top_p {sampling['top_p']}",
        f"PARAMETER top_k {sampling['top_k']}",
        f"PARAMETER repeat_penalty {sampling['repetition_penalty']}",
    ]
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    return "\n".join(lines) + "\n"


def write_modelfile(out_dir: str | Path, gguf_name: str, chat_template: str | None, sampling: dict,
                    *, system: str | None = None) -> Path:
    from medllm.io import atomic_write_text

    return atomic_write_text(Path(out_dir) / "Modelfile",
                             modelfile_text(gguf_name, chat_template, sampling, system=system))
