"""Semantic recipe checks on the raw mapping: files, references, incompatible settings.

They read the raw dict defensively (it may have failed type validation) so that one
``medllm validate`` reports everything wrong in a recipe at once.
"""
from __future__ import annotations

from typing import Any

from medllm.config.loader import Problem, expand_path
from medllm.config.train import STAGE_TYPES

BUILTIN_PREFIX = "builtin:"
# what each stage needs its data to be
STAGE_DATA_KINDS = {
    "pretrain": {"text", "auto"},
    "sft": {"sft", "auto", "completion"},
    "reward": {"preference", "ranked", "auto"},
    "dpo": {"preference", "ranked", "auto"},
    "rejection_sampling": {"sft", "auto", "completion", "text"},
}


def _d(node: Any, key: str) -> Any:
    return node.get(key) if isinstance(node, dict) else None


def _path_exists(text: str) -> bool:
    return text.startswith(BUILTIN_PREFIX) or expand_path(text).exists()


def semantic_problems(raw: dict, *, check_files: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    problems += _model_problems(raw, check_files)
    sources = _d(_d(raw, "data"), "sources")
    names: dict[str, dict] = {}
    if isinstance(sources, list):
        for i, src in enumerate(sources):
            if not isinstance(src, dict):
                continue
            name = src.get("name")
            if isinstance(name, str):
                if name in names:
                    problems.append(Problem(f"data.sources.{i}.name", f"duplicate source name '{name}'"))
                names[name] = src
            path = src.get("path")
            if check_files and isinstance(path, str) and not _path_exists(path):
                problems.append(Problem(f"data.sources.{i}.path", f"file or folder not found: {path}"))
            if isinstance(path, str) and path.startswith(BUILTIN_PREFIX):
                problems += _builtin_problems(f"data.sources.{i}.path", path)
            if src.get("task") is not None:
                problems += _task_source_problems(f"data.sources.{i}", src, check_files)
    clean = _d(_d(raw, "data"), "clean")
    for i, p in enumerate(_d(clean, "decontaminate") or []):
        if check_files and isinstance(p, str) and not _path_exists(p):
            problems.append(Problem(f"data.clean.decontaminate.{i}", f"file not found: {p}"))
    mix = _d(_d(raw, "data"), "mix")
    groups = {s.get("group") for s in names.values() if s.get("group")}
    for key in (_d(mix, "weights") or {}):
        if key not in names and key not in groups:
            problems.append(Problem(f"data.mix.weights.{key}",
                                    f"'{key}' is neither a source name nor a group "
                                    f"(sources: {', '.join(names) or 'none'}; groups: {', '.join(sorted(groups)) or 'none'})"))
    problems += _stage_problems(raw, names, check_files)
    problems += _eval_problems(raw, check_files)
    problems += _serve_problems(raw, check_files)
    return problems


def _model_problems(raw: dict, check_files: bool) -> list[Problem]:
    from medllm.models.registry import ModelNotFound, resolve

    model = _d(raw, "model")
    name = _d(model, "name")
    out = []
    if isinstance(name, str) and check_files:
        try:
            resolve(name)
        except ModelNotFound as exc:
            out.append(Problem("model.name", str(exc)))
    tpl = _d(model, "chat_template")
    if check_files and isinstance(tpl, str) and not expand_path(tpl).is_file():
        out.append(Problem("model.chat_template", f"template file not found: {tpl}"))
    if tpl is None:
        out += _template_problems(raw, name if isinstance(name, str) else None)
    return out


CHAT_STAGES = ("sft", "dpo", "reward", "rejection_sampling")  # stages that render conversations


def _template_problems(raw: dict, name: str | None) -> list[Problem]:
    """A base model without a chat template fails at the first tokenization of a chat stage,
    possibly after hours of pretraining: say so here."""
    from medllm.models.registry import DEFAULT_MODEL, has_chat_template

    stages = _d(raw, "stages")
    chat = [n for n, st in stages.items() if _d(st, "type") in CHAT_STAGES] if isinstance(stages, dict) else []
    if not chat or has_chat_template(name or DEFAULT_MODEL) is not False:
        return []
    return [Problem("model.chat_template",
                    f"the model {name} has no chat template, but stage(s) {', '.join(chat)} format conversations "
                    f"with one; set model.chat_template to a Jinja template file (e.g. configs/templates/"
                    f"llama-2-chat.jinja for a Llama-2 base), or start from a chat/instruct model")]


def _builtin_problems(where: str, path: str) -> list[Problem]:
    try:
        from medllm.data.builtin import BUILTIN_SETS
    except ImportError:  # data package not built yet: accept the demo names
        BUILTIN_SETS = ("demo/pretrain", "demo/sft", "demo/sft_facts", "demo/sft_compact", "demo/preference", "demo/mcq",
                        "demo/free")
    name = path[len(BUILTIN_PREFIX):]
    if name not in BUILTIN_SETS:
        return [Problem(where, f"unknown built-in set '{name}' (have: {', '.join(BUILTIN_SETS)})")]
    return []


def _task_source_problems(where: str, src: dict, check_files: bool) -> list[Problem]:
    """A source read through an eval task (the supervised setting): the task must exist, have a
    gold answer to train on and a generate prompt; file-format options do not apply."""
    import difflib

    from medllm.data.task_source import task_problem
    from medllm.eval.spec import TaskSpecError, builtin_names, load_spec

    out: list[Problem] = []
    task = src.get("task")
    kind = src.get("kind", "auto")
    if kind not in ("auto", "sft"):
        out.append(Problem(f"{where}.kind", f"a task source is always kind sft (got {kind}); drop kind"))
    if src.get("format", "auto") != "auto":
        out.append(Problem(f"{where}.format", "a task source is read by its task's own loader; drop format "
                                              "(a task YAML's 'format:' names the reader)"))
    if src.get("columns"):
        out.append(Problem(f"{where}.columns", "a task source maps columns with its task YAML's 'fields:'; "
                                               "drop columns"))
    if src.get("skip_invalid"):
        out.append(Problem(f"{where}.skip_invalid", "a task source stops at its first bad record "
                                                    "(the eval loader checks every one); drop skip_invalid"))
    if not isinstance(task, str):
        return out  # the schema pass reports the type
    is_file = task.endswith((".yaml", ".yml"))
    if is_file and not check_files and not expand_path(task).is_file():
        return out
    try:
        spec = load_spec(expand_path(task) if is_file else task)
    except TaskSpecError as exc:
        if is_file:
            out.append(Problem(f"{where}.task", str(exc)))
        else:
            names = builtin_names()
            close = difflib.get_close_matches(task, names, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            out.append(Problem(f"{where}.task", f"unknown eval task '{task}'{hint}; built-in tasks: "
                                                f"{', '.join(names)} (or give a task YAML file)"))
        return out
    why = task_problem(spec)
    if why:
        out.append(Problem(f"{where}.task", why))
    return out


def _stage_problems(raw: dict, sources: dict[str, dict], check_files: bool) -> list[Problem]:
    out: list[Problem] = []
    stages = _d(raw, "stages")
    if not isinstance(stages, dict):
        return out
    seen: list[str] = []
    for name, st in stages.items():
        if not isinstance(st, dict):
            out.append(Problem(f"stages.{name}", "a stage must be a mapping"))
            continue
        stype = st.get("type")
        where = f"stages.{name}"
        for i, ref in enumerate(st.get("data") or []):
            if not isinstance(ref, str):
                continue
            if ref in sources:
                kind = "sft" if sources[ref].get("task") is not None else sources[ref].get("kind", "auto")
                if stype in STAGE_DATA_KINDS and kind not in STAGE_DATA_KINDS[stype]:
                    out.append(Problem(f"{where}.data.{i}", f"a {stype} stage cannot train on '{ref}' "
                                                            f"(kind {kind}; needs {'/'.join(sorted(STAGE_DATA_KINDS[stype] - {'auto'}))})"))
            elif ref == "mix" and isinstance(_d(_d(raw, "data"), "mix"), dict):
                continue  # the mixture prepare_data builds from data.mix
            elif ref.startswith(BUILTIN_PREFIX):
                out += _builtin_problems(f"{where}.data.{i}", ref)
            elif check_files and not expand_path(ref).exists():
                out.append(Problem(f"{where}.data.{i}", f"'{ref}' is not a data source name nor an existing file "
                                                        f"(sources: {', '.join(sources) or 'none'})"))
        if stype in STAGE_TYPES and not st.get("data") and stype != "rejection_sampling":
            out.append(Problem(f"{where}.data", f"a {stype} stage needs training data"))
        adapter = st.get("adapter") or {}
        if isinstance(adapter, dict) and adapter.get("method") == "qlora":
            out += _qlora_problems(f"{where}.adapter.method")
        for knob in ("freeze_layers", "freeze_embeddings"):
            if isinstance(adapter, dict) and adapter.get(knob) and adapter.get("method", "lora") != "full":
                out.append(Problem(f"{where}.adapter.{knob}", "freezes parts of full fine-tuning only "
                                                              "(a LoRA adapter already leaves the base frozen)"))
        if st.get("pad_to_multiple_of") and st.get("packing", stype == "pretrain"):
            out.append(Problem(f"{where}.pad_to_multiple_of", "rounds the width of padded batches; this stage packs "
                                                              "its rows (packing: true), so there is no padding to round"))
        if stype in ("reward", "dpo") and st.get("packing"):
            out.append(Problem(f"{where}.packing", f"packing is not supported for {stype} (pairs must stay whole)"))
        if stype == "rejection_sampling":
            scorer = st.get("scorer", "reward")
            if scorer == "reward" and not any(isinstance(stages.get(s), dict) and stages[s].get("type") == "reward"
                                              for s in seen):
                out.append(Problem(f"{where}.scorer", "scorer 'reward' needs a reward stage earlier in the recipe "
                                                      "(or give a reward-model folder, or 'rule')"))
            elif scorer not in ("reward", "rule") and check_files and not expand_path(scorer).exists():
                out.append(Problem(f"{where}.scorer", f"reward model folder not found: {scorer}"))
            if isinstance(st.get("top_n"), int) and isinstance(st.get("k"), int) and st["top_n"] > st["k"]:
                out.append(Problem(f"{where}.top_n", f"top_n ({st['top_n']}) cannot exceed k ({st['k']})"))
        vf = st.get("val_file")
        if check_files and isinstance(vf, str) and not _path_exists(vf):
            out.append(Problem(f"{where}.val_file", f"file not found: {vf}"))
        seen.append(name)
    return out


def _qlora_problems(where: str) -> list[Problem]:
    import importlib.util

    # bitsandbytes 0.50 quantizes to NF4 on CPU as well as on CUDA, so only its absence is a problem
    if importlib.util.find_spec("bitsandbytes") is None:
        return [Problem(where, "qlora needs the bitsandbytes package: pip install --no-deps bitsandbytes==0.50.2")]
    return []


def _eval_problems(raw: dict, check_files: bool) -> list[Problem]:
    out = []
    tasks = _d(_d(raw, "eval"), "tasks")
    if isinstance(tasks, list):
        for i, t in enumerate(tasks):
            path = _d(t, "path")
            if check_files and isinstance(path, str) and not _d(t, "optional") and not _path_exists(path):
                out.append(Problem(f"eval.tasks.{i}.path", f"file not found: {path} (set optional: true to skip when absent)"))
    return out


def _serve_problems(raw: dict, check_files: bool) -> list[Problem]:
    serve = _d(raw, "serve")
    host = _d(serve, "host")
    out = []
    keys = _d(serve, "api_keys_file")
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not keys:
        out.append(Problem("serve.host", f"binding {host} exposes the model beyond this machine; "
                                         "set serve.api_keys_file so every request is authenticated"))
    return out
