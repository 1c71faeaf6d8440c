"""Stage data: names -> datasets, optional sample cap, held-out validation split."""
from __future__ import annotations

from pathlib import Path


class StageDataError(ValueError):
    pass


def _read_canonical(path: Path):
    """Fallback when medllm.data is absent: a .jsonl/.json file already in canonical form."""
    import json

    from datasets import Dataset

    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise StageDataError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
    else:
        rows = json.loads(text)
    return Dataset.from_list(rows)


def _load_ref(ref: str):
    """A file path or ``builtin:`` set through the data area's loader (imported lazily)."""
    try:
        from medllm.data import load_source  # the data area owns formats and file:line errors
    except ImportError:
        if ref.startswith("builtin:"):
            raise StageDataError(f"{ref}: built-in sets need the medllm.data package") from None
        return _read_canonical(Path(ref).expanduser())
    return load_source(ref).dataset


def _as_dataset(obj):
    return getattr(obj, "dataset", obj)


def resolve_stage_data(refs: list[str], datasets: dict | None, *, stage: str):
    """Concatenate the datasets a stage names (recipe source names first, then files/builtins)."""
    from datasets import concatenate_datasets

    datasets = datasets or {}
    if not refs:
        raise StageDataError(f"stage '{stage}' has no data (set data: [...])")
    parts = []
    for ref in refs:
        if ref in datasets:
            parts.append(_as_dataset(datasets[ref]))
        elif ref.startswith("builtin:") or Path(ref).expanduser().exists():
            parts.append(_as_dataset(_load_ref(ref)))
        else:
            raise StageDataError(f"stage '{stage}': data '{ref}' is neither a loaded source "
                                 f"({', '.join(datasets) or 'none'}) nor an existing file")
    if len(parts) == 1:
        return parts[0]
    common = set(parts[0].column_names).intersection(*[p.column_names for p in parts[1:]])
    return concatenate_datasets([p.select_columns(sorted(common)) for p in parts])


def split_validation(ds, stage_cfg, datasets: dict | None, *, seed: int):
    """(train, validation or None): ``val_file`` wins over ``val_fraction``."""
    if len(ds) == 0:
        raise StageDataError("the stage's dataset is empty")
    if stage_cfg.max_samples:
        ds = ds.select(range(min(stage_cfg.max_samples, len(ds))))
    if stage_cfg.val_file:
        return ds, resolve_stage_data([stage_cfg.val_file], datasets, stage="validation")
    if stage_cfg.val_fraction and len(ds) >= 4:
        parts = ds.train_test_split(test_size=stage_cfg.val_fraction, seed=seed, shuffle=True)
        return parts["train"], parts["test"]
    return ds, None
