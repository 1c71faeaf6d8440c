"""What a server serves: a base model (registry name, HF folder, GGUF or a run
folder's final model) plus named LoRA adapters, each with a content hash.

Model ids clients use: the base id (registry name, folder name or run name) and
one id per adapter (``<run>/<stage>`` for a run's adapters, ``NAME`` for
``--adapter NAME=PATH``)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from medllm.config.serve import SamplingDefaults


class ServeModelError(ValueError):
    pass


@dataclass
class RunModels:
    name: str
    model_dir: Path                       # the final model (last done causal-LM stage)
    adapters: dict[str, Path]             # "<run>/<stage>" -> adapter folder
    adapter_bases: dict[str, Path]        # same ids -> the model that adapter was trained on
    stage_models: dict[Path, str] = field(default_factory=dict)   # model_dir -> stage name


@dataclass
class ServedModel:
    id: str
    engine: object                      # BatchingEngine or LlamaCppEngine (same submit API)
    tokenizer: object
    folder: Path
    sha256: str
    adapters: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (peft adapter name, sha256)
    sampling: SamplingDefaults = field(default_factory=SamplingDefaults)
    backend: str = "transformers"
    created: int = 0

    def ids(self) -> list[str]:
        return [self.id, *self.adapters]


class ModelPool:
    """Look up (served model, adapter) by the ``model`` field of a request."""

    def __init__(self, served: list[ServedModel]):
        if not served:
            raise ServeModelError("nothing to serve")
        self.served = served
        self._index: dict[str, tuple[ServedModel, str | None]] = {}
        for sm in served:
            for mid, target in [(sm.id, None), *((aid, name) for aid, (name, _) in sm.adapters.items())]:
                if mid in self._index:
                    raise ServeModelError(f"model id {mid!r} is used twice")
                self._index[mid] = (sm, target)

    @property
    def default(self) -> ServedModel:
        return self.served[0]

    def resolve(self, model_id: str | None) -> tuple[ServedModel, str | None]:
        if not model_id:
            return self.default, None
        if model_id not in self._index:
            raise KeyError(model_id)
        return self._index[model_id]

    def ids(self) -> list[str]:
        return list(self._index)

    def stop(self) -> None:
        for sm in self.served:
            sm.engine.stop()


def read_run(run_dir: str | Path) -> RunModels:
    """Final model and adapters of a run folder (from ``state.json``).

    An adapter is only meaningful on the model it was trained on (the stage's
    ``base_model``, else its adapter_config's ``base_model_name_or_path``), which is
    usually NOT the final merged model; reward-model stages are never served."""
    run_dir = Path(run_dir)
    state_file = run_dir / "state.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ServeModelError(f"{state_file}: cannot read run state ({exc})") from exc
    stages = state.get("stages") or {}
    final, adapters, bases, stage_models = None, {}, {}, {}
    for stage, info in stages.items():   # insertion order = pipeline order
        if not isinstance(info, dict) or info.get("status") != "done" or not info.get("model_dir"):
            continue
        model_dir = _run_path(run_dir, info["model_dir"])
        if not _is_causal_lm(model_dir):
            continue
        final = model_dir
        stage_models[model_dir] = stage
        if info.get("adapter_dir"):
            aid = f"{run_dir.name}/{stage}"
            adapters[aid] = _run_path(run_dir, info["adapter_dir"])
            base = info.get("base_model") or _adapter_base(adapters[aid])
            if base is None:
                raise ServeModelError(f"{run_dir}: cannot tell which model adapter {aid} was trained on")
            bases[aid] = _local_model(base, run_dir)
    if final is None:
        raise ServeModelError(f"{run_dir}: no finished stage with a model_dir in state.json "
                              "(run the pipeline first, or serve a model name/folder)")
    return RunModels(run_dir.name, final, adapters, bases, stage_models)


def _is_causal_lm(folder: Path) -> bool:
    cfg = folder / "config.json"
    if not cfg.is_file():
        return True
    archs = json.loads(cfg.read_text()).get("architectures") or []
    return not any(a.endswith("ForSequenceClassification") for a in archs)


def _adapter_base(adapter: Path) -> str | None:
    cfg = adapter / "adapter_config.json"
    return json.loads(cfg.read_text()).get("base_model_name_or_path") if cfg.is_file() else None


def _local_model(spec: str, run_dir: Path) -> Path:
    from medllm.models import ensure_local

    p = Path(spec)
    if not p.is_absolute() and (run_dir / p).exists():
        p = run_dir / p
    return Path(ensure_local(str(p) if p.exists() else spec)).resolve()


def _run_path(run_dir: Path, recorded: str) -> Path:
    p = Path(recorded)
    for cand in (p, run_dir / p):
        if cand.exists():
            return cand.resolve()
    raise ServeModelError(f"{run_dir}/state.json points to {recorded}, which does not exist")


def is_run_dir(spec: str | Path) -> bool:
    return (Path(spec) / "state.json").is_file()


def folder_sha256(folder: Path) -> str:
    """One hash for a model/adapter folder: over its manifest when present (already
    per-file SHA-256s), else over every weight and config file's content. A stage folder
    with a lineage hashes the folders it is built from, so the audit names the weights."""
    from medllm.models.integrity import model_parts
    from medllm.models.lineage import is_lineage

    folder = Path(folder)
    h = hashlib.sha256()
    if is_lineage(folder):
        for role, part in model_parts(folder):
            h.update(role.encode() + b"\0" + folder_sha256(part).encode())
        return h.hexdigest()
    manifest = folder / "medllm_manifest.json"
    if manifest.is_file():
        h.update(manifest.read_bytes())
        return h.hexdigest()
    from medllm.io import sha256_file

    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix in (".safetensors", ".json", ".jinja", ".model", ".gguf"):
            h.update(f.name.encode() + b"\0" + sha256_file(f).encode())
    return h.hexdigest()


def check_model_files(folder: Path, adapters: dict[str, Path]) -> list[str]:
    """``--check``: every folder that will be loaded (the model, for a stage folder its base and
    each adapter of its lineage, and every served adapter with its base) against its sha256
    manifest. Empty when all match; otherwise one line per problem, naming the file."""
    from medllm.models.integrity import verify_model
    from medllm.models.lineage import LineageError

    problems, seen = [], set()
    for name, f in [("model", folder), *adapters.items()]:
        key = Path(f).resolve()
        if key in seen:   # a run's adapters often share one base
            continue
        seen.add(key)
        try:
            problems += verify_model(f, name)
        except LineageError as exc:
            problems.append(f"{name}: {exc}")
    return problems


def check_served(spec: str | Path, adapters: dict[str, Path] | None = None) -> list[str]:
    """What ``medllm serve SPEC --check`` verifies before loading anything: the model (a run
    folder's final model, each stage adapter and the model it was trained on) and every
    ``--adapter``. Empty when all of it matches its manifests."""
    from medllm.models.loading import model_folder

    run = read_run(spec) if is_run_dir(spec) else None
    folder = run.model_dir if run else model_folder(spec)
    parts = dict(run.adapters) if run else {}
    if run:
        parts.update({f"base of {aid}": b for aid, b in run.adapter_bases.items()})
    return check_model_files(folder, {**parts, **(adapters or {})})


def load_served(spec: str | Path, *, adapters: dict[str, Path] | None = None, max_batch: int = 8,
                max_queue: int = 64, dtype: str = "auto", sampling: SamplingDefaults | None = None,
                backend: str = "transformers", model_id: str | None = None) -> ServedModel:
    """Load ``spec`` (model reference or run folder) with its adapters into a started engine."""
    import time

    from medllm.models import load_causal_lm
    from medllm.models.registry import resolve
    from medllm.serve.engine import BatchingEngine

    adapters = dict(adapters or {})
    if is_run_dir(spec):
        raise ServeModelError(f"{spec} is a run folder: use load_pool() (a run may need several base models)")
    ref = resolve(spec)
    model_ref, base_id = ref, model_id or ref.name
    if backend in ("llama.cpp", "hybrid"):
        from medllm.serve.llamacpp import load_llamacpp_served

        if adapters:
            raise ServeModelError(f"--backend {backend} serves a GGUF without adapters")
        return load_llamacpp_served(spec, model_id=base_id, max_queue=max_queue, max_batch=max_batch,
                                    sampling=sampling or SamplingDefaults(), hybrid=backend == "hybrid")
    if backend != "transformers":
        raise ServeModelError(f"unknown backend {backend!r} (transformers | llama.cpp | hybrid)")
    from medllm.models.loading import model_folder

    folder = model_folder(model_ref)
    model, tok = load_causal_lm(folder, dtype=dtype)
    adapter_info: dict[str, tuple[str, str]] = {}
    if adapters:
        from peft import PeftModel

        for i, (aid, path) in enumerate(adapters.items()):
            if not (Path(path) / "adapter_config.json").is_file():
                raise ServeModelError(f"adapter {aid}: {path} has no adapter_config.json")
            peft_name = f"a{i}"
            if i == 0:
                model = PeftModel.from_pretrained(model, str(path), adapter_name=peft_name)
            else:
                model.load_adapter(str(path), adapter_name=peft_name)
            adapter_info[aid] = (peft_name, folder_sha256(Path(path)))
        model.eval()
    engine = BatchingEngine(model, tok, max_batch=max_batch, max_queue=max_queue,
                            adapters=tuple(n for n, _ in adapter_info.values())).start()
    return ServedModel(id=base_id, engine=engine, tokenizer=tok, folder=folder,
                       sha256=folder_sha256(folder) if folder.is_dir() else "", adapters=adapter_info,
                       sampling=sampling or SamplingDefaults(), created=int(time.time()))


def load_pool(spec: str | Path, *, adapters: dict[str, Path] | None = None, **kw) -> ModelPool:
    """Everything ``medllm serve SPEC`` serves. For a run folder: the final model as
    ``<run>`` and each stage adapter ``<run>/<stage>`` on the model it was trained on
    (adapters sharing a base share one engine; a base that is not the final model is
    also listed, as ``<run>/base`` or ``<run>/<stage>:merged``)."""
    adapters = dict(adapters or {})
    if not is_run_dir(spec):
        return ModelPool([load_served(spec, adapters=adapters, **kw)])
    run = read_run(spec)
    final = run.model_dir.resolve()
    groups: dict[Path, dict[str, Path]] = {final: dict(adapters)}   # --adapter NAME=PATH go on the final model
    for aid, path in run.adapters.items():
        groups.setdefault(run.adapter_bases[aid], {})[aid] = path
    served = []
    try:
        for base, group in groups.items():
            if base == final:
                mid = run.name
            elif base in run.stage_models:
                mid = f"{run.name}/{run.stage_models[base]}:merged"
            else:
                mid = f"{run.name}/base"
            served.append(load_served(base, adapters=group, model_id=mid, **kw))
    except BaseException:
        for sm in served:
            sm.engine.stop()
        raise
    return ModelPool(served)
