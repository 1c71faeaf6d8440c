"""Stage folders that hold adapters instead of full weights, and their on-demand merge.

A LoRA/QLoRA stage writes ``adapter/`` and ``model.json``::

    {"base": "/abs/plain/base/folder",
     "adapters": ["/abs/earlier/stage/adapter", ..., "/abs/this/stage/adapter"],
     "dtype": "bfloat16"}

No full copy of the weights is written (an 8B model is 16 GB per stage in bf16). Loading such
a folder loads the base in the requested dtype and merges the adapters in order, in memory;
``materialize_merged`` writes ``merged/`` only for consumers that need files."""
from __future__ import annotations

import json
from pathlib import Path

LINEAGE = "model.json"


class LineageError(ValueError):
    pass


def is_lineage(folder: str | Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and (folder / LINEAGE).is_file() and not (folder / "config.json").is_file()


def read_lineage(folder: str | Path) -> dict:
    """The lineage of a stage folder, checked: every named folder must exist."""
    path = Path(folder) / LINEAGE
    try:
        lin = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LineageError(f"{path}: cannot read the stage's model lineage ({exc})") from exc
    if not isinstance(lin, dict) or not isinstance(lin.get("base"), str) or not isinstance(lin.get("adapters"), list):
        raise LineageError(f"{path}: expected {{base: folder, adapters: [folders], dtype}}")
    missing = [p for p in [lin["base"], *lin["adapters"]] if not Path(p).is_dir()]
    if missing:
        raise LineageError(f"{path}: folder(s) {missing} named in the lineage do not exist")
    lin.setdefault("dtype", "float32")
    return lin


def lineage_after(base_model: str | Path, adapter_dir: Path, dtype: str) -> dict:
    """The lineage of a stage that trained ``adapter_dir`` on ``base_model`` (a plain model
    folder or an earlier stage folder with its own lineage)."""
    base_model = Path(base_model)
    earlier: list[str] = []
    if is_lineage(base_model):
        lin = read_lineage(base_model)
        base, earlier = lin["base"], list(lin["adapters"])
    else:
        base = str(base_model.resolve())
    return {"base": base, "adapters": [*earlier, str(Path(adapter_dir).resolve())], "dtype": dtype}


def lineage_tokenizer_dir(folder: str | Path) -> Path:
    """The tokenizer of a stage folder: saved with its (last) adapter."""
    lin = read_lineage(folder)
    for cand in [*reversed(lin["adapters"]), lin["base"]]:
        if (Path(cand) / "tokenizer_config.json").is_file():
            return Path(cand)
    raise LineageError(f"{folder}: no tokenizer in its adapters or base")


def merged_dir(folder: str | Path) -> Path | None:
    """``merged/`` of a stage folder when it was materialised completely (manifest written last)."""
    from medllm.models.convert import MANIFEST

    m = Path(folder) / "merged"
    return m if (m / MANIFEST).is_file() else None


def materialize_merged(stage_dir: str | Path) -> Path:
    """Write ``<stage_dir>/merged/`` (base + adapters merged, in the lineage's dtype, with a
    sha256 manifest), atomically; return it. A plain model folder is returned as it is."""
    from medllm.io import atomic_dir
    from medllm.models.convert import write_manifest
    from medllm.models.loading import load_causal_lm

    stage_dir = Path(stage_dir)
    if not is_lineage(stage_dir):
        return stage_dir
    done = merged_dir(stage_dir)
    if done is not None:
        return done
    lin = read_lineage(stage_dir)
    model, tok = load_causal_lm(stage_dir, dtype=lin["dtype"], device="cpu")
    target = stage_dir / "merged"
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_manifest(tmp, {"type": "merged", "lineage": lin})
    return target
