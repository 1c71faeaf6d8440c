"""``medllm export``: one output folder holding whichever formats were asked for.

    OUT/
      hf/                     merged safetensors folder (transformers / vLLM)
      model-<type>.gguf       llama.cpp
      Modelfile               Ollama (FROM ./model-<type>.gguf)
      export.json             what was exported from what, with sha256 of every file

The folder is built in a temp dir and renamed into place. An existing OUT is only
replaced when it is an earlier medllm export (has export.json), so a mistyped --out
never wipes unrelated files.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from medllm.export.resolve import ExportError, final_stage, resolve_lineage

log = logging.getLogger(__name__)
FORMATS = ("hf", "gguf", "ollama")


def default_sampling(run_or_model: str | Path | None = None) -> dict:
    """The run recipe's ``serve.sampling`` when RUN_OR_MODEL is a run, else the
    schema defaults (temperature 0.6, top_p 0.9, top_k 50, repetition_penalty 1.2)."""
    from medllm.config.serve import SamplingDefaults

    if run_or_model is not None and (Path(str(run_or_model)) / "recipe.yaml").is_file():
        try:
            from medllm.runs import RunFolder

            return RunFolder(Path(str(run_or_model))).recipe().serve.sampling.model_dump()
        except Exception as exc:  # an unreadable recipe must not block an export; say so
            log.warning("could not read sampling defaults from %s (%s); using medllm defaults", run_or_model, exc)
    return SamplingDefaults().model_dump()


def _parse_formats(formats) -> list[str]:
    chosen = []
    for f in ([formats] if isinstance(formats, str) else list(formats)):
        for part in str(f).split(","):
            part = part.strip().lower()
            if part == "all":
                chosen += list(FORMATS)
            elif part in FORMATS:
                chosen.append(part)
            elif part:
                raise ExportError(f"unknown export format {part!r}; choose from hf, gguf, ollama, all")
    if not chosen:
        raise ExportError("no export format given")
    if "ollama" in chosen and "gguf" not in chosen:
        chosen.append("gguf")   # a Modelfile points at the GGUF it sits next to
    return [f for f in FORMATS if f in chosen]


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "export.json").is_file())):
        raise ExportError(f"{out} exists and is not an earlier medllm export (no export.json); "
                          "choose a new or empty --out folder")


def export_model(run_or_model: str | Path, out_dir: str | Path, *, formats="all", gguf_type: str = "q8_0",
                 dtype: str = "auto", system: str | None = None) -> dict:
    """Export a run's final model (adapter merged) or any model reference.
    Returns the export record written to ``OUT/export.json``."""
    from medllm.export.gguf_llama import GGUF_TYPES, export_gguf
    from medllm.export.hf import export_hf
    from medllm.export.ollama import chat_format, write_modelfile
    from medllm.io import atomic_dir, atomic_write_json, sha256_file
    from medllm.models.loading import load_tokenizer

    chosen = _parse_formats(formats)
    if "gguf" in chosen and gguf_type not in GGUF_TYPES:
        raise ExportError(f"unknown GGUF type {gguf_type!r}; choose one of {', '.join(GGUF_TYPES)}")
    out = Path(out_dir)
    _check_out(out)
    model_dir, adapters, lineage_dtype = resolve_lineage(run_or_model)
    adapter = adapters[0] if len(adapters) == 1 else (adapters or None)
    if dtype == "auto" and lineage_dtype:
        dtype = lineage_dtype   # the dtype the stage trained and recorded
    source = {"input": str(run_or_model), "base": str(model_dir),
              "adapter": str(adapters[0]) if len(adapters) == 1 else ([str(a) for a in adapters] or None)}
    if (Path(str(run_or_model)) / "state.json").is_file():
        source["stage"] = final_stage(run_or_model)[0]
    sampling = default_sampling(run_or_model)
    chat_template = load_tokenizer(model_dir).chat_template
    if "ollama" in chosen:
        chat_format(chat_template)   # fail before minutes of conversion, not after

    started = time.time()
    with atomic_dir(out) as tmp:
        if "hf" in chosen:
            export_hf(model_dir, tmp / "hf", adapter=adapter, dtype=dtype, source=source)
        if "gguf" in chosen:
            gguf_name = f"model-{gguf_type}.gguf"
            export_gguf(model_dir, tmp / gguf_name, gguf_type=gguf_type, adapter=adapter,
                        name=Path(str(run_or_model)).name, sampling=sampling)
        if "ollama" in chosen:
            write_modelfile(tmp, gguf_name, chat_template, sampling, system=system)
        record = {
            "medllm_export": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "formats": chosen, "gguf_type": gguf_type if "gguf" in chosen else None,
            "source": source, "sampling": sampling, "seconds": round(time.time() - started, 2),
            "files": {str(f.relative_to(tmp)): sha256_file(f) for f in sorted(tmp.rglob("*")) if f.is_file()},
        }
        atomic_write_json(tmp / "export.json", record)
    log.info("exported %s -> %s (%s)", run_or_model, out, ", ".join(chosen))
    return record
