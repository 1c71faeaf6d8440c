"""The Modelfile's Go template produces the same prompt text as the model's Jinja template."""
from __future__ import annotations

import pytest

from medllm.export import ExportError
from medllm.export.ollama import FORMATS, chat_format, modelfile_text

CONVERSATION = [
    {"role": "system", "content": "You are a careful clinical assistant."},
    {"role": "user", "content": "I have a headache."},
    {"role": "assistant", "content": "How long have you had it?"},
    {"role": "user", "content": "Two days."},
]
SAMPLING = {"temperature": 0.6, "top_p": 0.9, "top_k": 50, "repetition_penalty": 1.2}
# A Llama-3-style Jinja template (header tokens, <|eot_id|> after each turn).
LLAMA3_JINJA = ("{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}"
                "<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>"
                "\n\n{% endif %}")


def render_go(template: str, messages: list[dict]) -> str:
    """Evaluate the subset of Go template syntax the Modelfile uses: one range over .Messages."""
    head, rest = template.split("{{- range .Messages }}")
    body, tail = rest.split("{{ end }}", 1)
    turns = "".join(body.replace("{{ .Role }}", m["role"]).replace("{{ .Content }}", m["content"]) for m in messages)
    return head + turns + tail


def test_chatml_template_matches_the_tokenizer(tiny_tokenizer):
    assert chat_format(tiny_tokenizer.chat_template) == "chatml"
    expected = tiny_tokenizer.apply_chat_template(CONVERSATION, add_generation_prompt=True, tokenize=False)
    assert render_go(FORMATS["chatml"][0], CONVERSATION) == expected


def test_llama3_template_matches_jinja():
    import jinja2

    assert chat_format(LLAMA3_JINJA) == "llama3"
    expected = jinja2.Template(LLAMA3_JINJA).render(messages=CONVERSATION, add_generation_prompt=True)
    assert render_go(FORMATS["llama3"][0], CONVERSATION) == expected
    text = modelfile_text("m.gguf", LLAMA3_JINJA, SAMPLING)
    assert 'PARAMETER stop "<|eot_id|>"' in text and "<|im_end|>" not in text


def test_system_prompt_and_unsupported_templates():
    text = modelfile_text("model-q8_0.gguf", "<|im_start|>{{ x }}<|im_end|>", SAMPLING, system="Be brief.")
    assert 'SYSTEM """Be brief."""' in text and text.startswith("#")
    with pytest.raises(ExportError, match="neither ChatML nor Llama-3"):
        modelfile_text("m.gguf", "[INST] {{ messages }} [/INST]", SAMPLING)
    with pytest.raises(ExportError, match="no chat template"):
        chat_format(None)
