"""A base model without a chat template, used by a stage that formats conversations, is a
``medllm validate`` error unless the recipe gives ``model.chat_template``; the shipped
Llama-2 chat template renders and masks as the Llama-2 chat format."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from medllm.cli.main import app
from medllm.config.loader import check_recipe

REPO = Path(__file__).resolve().parents[2]
LLAMA2_TEMPLATE = REPO / "configs" / "templates" / "llama-2-chat.jinja"


@pytest.fixture(scope="module")
def base_without_template(tiny_model_dir, tmp_path_factory):
    """tiny-llama's files with every trace of a chat template removed (as Llama-2-13b-hf ships)."""
    folder = tmp_path_factory.mktemp("models") / "plain-base"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    return folder


def _recipe(model: dict, stages: dict) -> dict:
    return {"name": "t", "model": model, "stages": stages}


def _template_problems(raw, check_files=True):
    _, problems = check_recipe(data=raw, check_files=check_files)
    return [p for p in problems if p.where == "model.chat_template"]


SFT = {"sft": {"data": ["builtin:demo/sft"]}}


def test_a_templateless_base_for_sft_is_a_validation_error(base_without_template):
    from medllm.models import load_tokenizer

    assert load_tokenizer(base_without_template).chat_template is None  # the fixture is what it claims
    found = _template_problems(_recipe({"name": str(base_without_template)}, SFT))
    assert len(found) == 1 and "no chat template" in found[0].message and "sft" in found[0].message
    dpo = {"pretrain": {"data": ["builtin:demo/pretrain"]}, "dpo": {"data": ["builtin:demo/preference"]}}
    found = _template_problems(_recipe({"name": str(base_without_template)}, dpo))
    assert len(found) == 1 and "dpo" in found[0].message and "pretrain" not in found[0].message


def test_the_recipes_template_or_a_templated_model_or_no_chat_stage_is_fine(base_without_template, tiny_model_dir):
    model = {"name": str(base_without_template), "chat_template": str(LLAMA2_TEMPLATE)}
    assert _template_problems(_recipe(model, SFT)) == []
    assert _template_problems(_recipe({"name": str(tiny_model_dir)}, SFT)) == []
    assert _template_problems(_recipe({"name": str(base_without_template)},
                                      {"pretrain": {"data": ["builtin:demo/pretrain"]}})) == []


def test_known_templateless_base_is_caught_without_its_files():
    """A cluster recipe checked on a laptop (--no-check-files): the Llama-2 base is known by name."""
    assert len(_template_problems(_recipe({"name": "/models/Llama-2-13b-hf"}, SFT), check_files=False)) == 1
    assert _template_problems(_recipe({"name": "/models/Llama-2-13b-chat-hf"}, SFT), check_files=False) == []


def test_validate_cli_reports_it(base_without_template, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe({"name": str(base_without_template)}, SFT)))
    res = CliRunner().invoke(app, ["validate", str(recipe)])
    assert res.exit_code == 1 and "model.chat_template" in res.output and "no chat template" in res.output


@pytest.mark.parametrize("recipe", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_validates_and_its_template_exists(recipe):
    parsed, problems = check_recipe(recipe, check_files=False)
    assert problems == [], problems
    tpl = parsed.model.chat_template
    if tpl is not None:
        assert (REPO / tpl).is_file(), tpl  # cwd-relative: recipes are run from the repository root


@pytest.fixture(scope="module")
def llama2_tok(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.add_special_tokens({"bos_token": "<s>", "eos_token": "</s>"})
    tok.chat_template = LLAMA2_TEMPLATE.read_text()
    return tok


CONV = [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Symptoms of flu?"},
        {"role": "assistant", "content": "Fever and cough."},
        {"role": "user", "content": "Treatment?"},
        {"role": "assistant", "content": "Rest and fluids."}]


def test_shipped_llama2_template_renders_the_llama2_chat_format(llama2_tok):
    text = llama2_tok.apply_chat_template(CONV, tokenize=False)
    assert text == ("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nSymptoms of flu? [/INST] Fever and cough. </s>"
                    "<s>[INST] Treatment? [/INST] Rest and fluids. </s>")
    prompt = llama2_tok.apply_chat_template(CONV[:4], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<s>[INST] Treatment? [/INST]") and text.startswith(prompt)
    with pytest.raises(Exception, match="alternating"):
        llama2_tok.apply_chat_template([{"role": "assistant", "content": "Hi"}], tokenize=False)


def test_shipped_llama2_template_masks_only_the_answers(llama2_tok):
    from medllm.train.tokenize import IGNORE, tokenize_conversation

    enc = tokenize_conversation(llama2_tok, CONV, max_len=512)
    targets = llama2_tok.decode([t for t, lab in zip(enc["input_ids"], enc["labels"]) if lab != IGNORE])
    assert targets.split() == ["Fever", "and", "cough.", "</s>", "Rest", "and", "fluids.", "</s>"]
    eos = llama2_tok.convert_tokens_to_ids("</s>")
    assert [t for t, lab in zip(enc["input_ids"], enc["labels"]) if lab != IGNORE].count(eos) == 2
