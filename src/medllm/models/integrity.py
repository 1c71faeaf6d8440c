"""Is what will be loaded byte-for-byte what a stage wrote? (``medllm serve --check``)

Every folder medllm writes (materialised base models, ``adapter/``, ``merged/``) carries
``medllm_manifest.json`` with the sha256 of each file, written last. A stage folder with a
lineage (``model.json``: base + adapters) is only as sound as every folder it names, so all
of them are checked, plus ``merged/`` when present (loading prefers it).

Strict on purpose: a folder without a manifest, a file changed, missing, or present but not
listed (a weight or config dropped in after the manifest was written) is a problem. The
manifests are not keyed: they catch corruption and partial tampering, not someone who
rewrites both the weights and the manifest."""
from __future__ import annotations

import json
from pathlib import Path

from medllm.io import sha256_file
from medllm.models.convert import MANIFEST


def verify_folder(folder: str | Path) -> list[str]:
    """Problems of one written folder against its manifest, each naming the file."""
    folder = Path(folder)
    man = folder / MANIFEST
    if not man.is_file():
        return [f"{man}: missing, so {folder} cannot be verified"]
    try:
        files = json.loads(man.read_text())["files"]
        if not isinstance(files, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{man}: unreadable (not a medllm manifest)"]
    problems = []
    for rel, meta in files.items():
        f = folder / rel
        if not f.is_file():
            problems.append(f"{f}: missing (listed in {man})")
        elif not isinstance(meta, dict) or sha256_file(f) != meta.get("sha256"):
            problems.append(f"{f}: sha256 mismatch (changed since {man} was written)")
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder)
        if f.is_file() and f != man and str(rel) not in files and not _hidden(rel):
            problems.append(f"{f}: not listed in {man} (added after the folder was written)")
    return problems


def _hidden(rel: Path) -> bool:
    # tool caches (.cache/huggingface of a hub download) are never loaded as weights
    return any(part.startswith(".") for part in rel.parts)


def model_parts(folder: str | Path) -> list[tuple[str, Path]]:
    """``(role, folder)`` of everything loading ``folder`` reads: itself, or for a stage folder
    with a lineage its base, each adapter in order and ``merged/`` when materialised."""
    from medllm.models.lineage import is_lineage, merged_dir, read_lineage

    folder = Path(folder)
    if not is_lineage(folder):
        return [("model", folder)]
    lin = read_lineage(folder)
    parts = [("base model", Path(lin["base"]))]
    parts += [(f"adapter {i} of {len(lin['adapters'])}", Path(a)) for i, a in enumerate(lin["adapters"], 1)]
    if (m := merged_dir(folder)) is not None:
        parts.append(("merged copy", m))
    return parts


def verify_model(folder: str | Path, label: str = "model") -> list[str]:
    """Every problem of ``folder`` and, for a lineage, of every folder it is built from."""
    problems = []
    for role, part in model_parts(folder):
        who = role if label == "model" else label if role == "model" else f"{label} ({role})"
        problems += [f"{who}: {p}" for p in verify_folder(part)]
    return problems
