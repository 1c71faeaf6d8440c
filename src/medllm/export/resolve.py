"""RUN_OR_MODEL -> (model folder, adapter folder or None).

A run folder's final model is the last stage (in state.json order, which is the order
the pipeline ran them) whose status is "done" and that recorded a ``model_dir`` and/or
an ``adapter_dir``. Anything else is a model reference for ``medllm.models``.
"""
from __future__ import annotations

import json
from pathlib import Path


class ExportError(ValueError):
    """A model or run cannot be exported/served as asked; the message says why."""


LINEAGE_FILE = "model.json"


def read_lineage(folder: str | Path) -> dict | None:
    """A stage folder's ``model.json`` lineage as ``{"base", "adapters": [Path], "dtype"}``,
    or None when ``folder`` has none. Relative paths resolve against the stage folder;
    ``adapters`` entries may be paths or ``{"path": ...}`` mappings, applied in order."""
    folder = Path(folder)
    f = folder / LINEAGE_FILE
    if not f.is_file() or (folder / "config.json").is_file():
        return None
    try:
        raw = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise ExportError(f"{f}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(raw, dict) or not raw.get("base"):
        raise ExportError(f"{f}: a model lineage needs a 'base' (model folder or registry name)")
    adapters = []
    for entry in raw.get("adapters") or []:
        ref = entry.get("path") if isinstance(entry, dict) else entry
        p = Path(str(ref)).expanduser()
        p = p if p.is_absolute() else (folder / p)
        if not (p / "adapter_config.json").is_file():
            raise ExportError(f"{f}: adapter {ref!r} has no adapter_config.json")
        adapters.append(p.resolve())
    base = str(raw["base"])
    bp = Path(base).expanduser()
    if not bp.is_absolute() and (folder / bp).exists():
        base = str((folder / bp).resolve())
    return {"base": base, "adapters": adapters, "dtype": raw.get("dtype")}


def _is_run_folder(path: Path) -> bool:
    return path.is_dir() and (path / "state.json").is_file() and not (path / "config.json").is_file()


def _locate(ref: str, run_dir: Path) -> str:
    """Stage outputs may be recorded relative to the run folder or the working
    directory; registry names (no such path) pass through unchanged."""
    p = Path(ref).expanduser()
    if p.is_absolute():
        return str(p)
    for base in (run_dir, Path.cwd()):
        if (base / p).exists():
            return str((base / p).resolve())
    return ref


def _adapter_base(adapter: Path) -> str:
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ExportError(f"{adapter}/adapter_config.json names no base_model_name_or_path; "
                          "give the base model explicitly")
    return base


def final_stage(run_dir: str | Path) -> tuple[str, dict]:
    """The name and state entry of a run's last finished stage that produced a model."""
    run_dir = Path(run_dir)
    state_file = run_dir / "state.json"
    try:
        state = json.loads(state_file.read_text())
    except json.JSONDecodeError as exc:
        raise ExportError(f"{state_file}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    done = [(name, st) for name, st in (state.get("stages") or {}).items()
            if isinstance(st, dict) and st.get("status") == "done" and (st.get("model_dir") or st.get("adapter_dir"))]
    if not done:
        statuses = {k: (v or {}).get("status") for k, v in (state.get("stages") or {}).items()}
        raise ExportError(f"run {run_dir} has no finished stage with a model yet (stages: {statuses or 'none'}); "
                          "finish a training stage first (medllm run)")
    return done[-1]


def resolve_lineage(run_or_model: str | Path) -> tuple[Path, list[Path], str | None]:
    """``(base model folder, [adapter folders in order], dtype or None)`` for a run folder,
    a stage folder with a ``model.json`` lineage, a PEFT adapter folder or any model
    reference (registry name, HF folder, .gguf file)."""
    from medllm.models.registry import ModelNotFound, ensure_local

    path = Path(str(run_or_model)).expanduser()
    adapters: list[Path] = []
    dtype = None
    if _is_run_folder(path):
        stage, entry = final_stage(path)
        model_ref = _locate(str(entry["model_dir"]), path) if entry.get("model_dir") else None
        lineage = read_lineage(model_ref) if model_ref and Path(model_ref).is_dir() else None
        if lineage is not None:
            base, adapters, dtype = lineage["base"], lineage["adapters"], lineage["dtype"]
        else:
            if entry.get("adapter_dir"):
                adapter = Path(_locate(str(entry["adapter_dir"]), path))
                if not (adapter / "adapter_config.json").is_file():
                    raise ExportError(f"run {path}, stage {stage!r}: adapter_dir {adapter} has no adapter_config.json")
                adapters = [adapter]
            base = model_ref if model_ref else _adapter_base(adapters[0])
    elif path.is_dir() and (lineage := read_lineage(path)) is not None:
        base, adapters, dtype = lineage["base"], lineage["adapters"], lineage["dtype"]
    elif path.is_dir() and (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        adapters, base = [path.resolve()], _adapter_base(path)
    else:
        base = str(run_or_model)
    if Path(base).is_dir() and (nested := read_lineage(base)) is not None:   # a lineage on a lineage
        inner_base, inner_adapters, inner_dtype = resolve_lineage(base)
        return inner_base, inner_adapters + adapters, dtype or inner_dtype
    try:
        folder = ensure_local(base)
    except ModelNotFound as exc:
        raise ExportError(str(exc)) from exc
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        raise ExportError(f"{folder} is an adapter, not a base model")
    return Path(folder), adapters, dtype


def resolve_run_model(run_or_model: str | Path) -> tuple[Path, Path | None]:
    """Return ``(model_folder, adapter_folder_or_None)`` for a run folder or a model
    reference (registry name, HF folder, PEFT adapter folder, stage folder, .gguf file).

    The model folder is local safetensors (registry models and GGUF files are
    materialised into MEDLLM_HOME once). Raises ``ExportError`` with a clear message;
    a lineage of several stacked adapters needs ``resolve_lineage`` (or ``medllm export``).
    """
    base, adapters, _ = resolve_lineage(run_or_model)
    if len(adapters) > 1:
        raise ExportError(f"{run_or_model} stacks {len(adapters)} adapters; merge them first with "
                          f"`medllm export {run_or_model} --format hf --out DIR` and use DIR/hf")
    return base, (adapters[0] if adapters else None)
