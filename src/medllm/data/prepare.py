"""``prepare_data(recipe, run)``: the pipeline's data stage. Every source is loaded and validated,
cleaned (``data.clean``), de-identified (``data.deid.enabled``) and, with ``data.mix``, mixed into
"mix". Reports, manifests, rejects, the deid audit and ``summary.json`` + ``<name>_lengths.png``
(what the run report shows) go to ``run.stage_dir("data")``
(the pipeline runner saves the returned datasets there for resume)."""
from __future__ import annotations

import logging

from medllm.io import atomic_write_json
from medllm.runs.provenance import file_sha256

log = logging.getLogger(__name__)


def _tokenizer(recipe):
    try:
        from medllm.models import load_tokenizer

        return load_tokenizer(recipe.model.name)
    except Exception as exc:  # mixing/limits fall back to a stated estimate rather than failing the run
        log.warning("no tokenizer for %s (%s); token counts are estimated", recipe.model.name, exc)
        return None


def prepare_data(recipe, run) -> dict:
    from medllm.data.clean import build_decontam_index, clean_dataset
    from medllm.data.deid.engine import deidentify_dataset
    from medllm.data.export import save_jsonl
    from medllm.data.loader import load_source
    from medllm.data.mix import mix_datasets
    from medllm.data.task_source import load_task_source

    cfg = recipe.data
    out = run.stage_dir("data")
    decontam = build_decontam_index(cfg.clean.decontaminate, cfg.clean.ngram) \
        if cfg.clean.enabled and cfg.clean.decontaminate else None
    datasets, files, manifest, audit = {}, {}, {"sources": {}}, []
    for src in cfg.sources:
        builtin = src.path.startswith("builtin:")
        if src.task:  # an eval task's file as SFT conversations (the supervised setting)
            loaded = load_task_source(src.path, src.task, name=src.name, max_samples=src.max_samples)
        else:
            loaded = load_source(src.path, kind=src.kind, format=src.format, columns=src.columns or None,
                                 max_samples=src.max_samples, ranked_pairs=src.ranked_pairs, name=src.name,
                                 skip_invalid=src.skip_invalid,
                                 rejects_path=None if builtin else out / f"{src.name}.rejects.jsonl", seed=recipe.seed)
        ds = loaded.dataset
        entry = {"path": src.path, "task": src.task, "kind": loaded.kind, "formats": loaded.formats, "group": src.group,
                 "loaded": len(ds), "rejected": len(loaded.problems),
                 "files_sha256": {} if builtin else {f: file_sha256(f) for f in loaded.files}}
        # built-in sets are curated and deliberately repeat facts in paraphrase: near-dedup would undo that
        if cfg.clean.enabled and not builtin and loaded.kind != "mcq":
            ds, report = clean_dataset(ds, cfg.clean, decontam=decontam)
            atomic_write_json(out / f"{src.name}.clean_report.json", report)
            entry["after_clean"] = len(ds)
            entry["removed"] = report["removed"]
        if cfg.deid.enabled and not builtin:
            ds, spans, counts = deidentify_dataset(ds, cfg.deid)
            audit += [dict(s, source=src.name) for s in spans]
            entry["deid_replacements"] = counts
        datasets[src.name] = ds
        files[src.name] = [] if builtin else loaded.files
        manifest["sources"][src.name] = entry
    if cfg.deid.enabled:
        save_jsonl(audit, out / "deid_audit.jsonl")
    if cfg.mix is not None and cfg.mix.weights:
        mixed, mix_manifest = mix_datasets(datasets, cfg.mix.weights, by=cfg.mix.by, total=cfg.mix.total,
                                           seed=recipe.seed, tokenizer=_tokenizer(recipe) if cfg.mix.by == "tokens" else None,
                                           groups={s.name: s.group for s in cfg.sources}, files=files)
        datasets["mix"] = mixed
        atomic_write_json(out / "mix_manifest.json", mix_manifest)
        manifest["mix"] = {k: mix_manifest[k] for k in ("target_ratio", "achieved_ratio", "max_ratio_error", "samples")}
    atomic_write_json(out / "data_manifest.json", manifest)
    from medllm.data.stats import data_summary

    # the report's data section: lengths per dataset (in the base model's tokens) + histograms
    data_summary(datasets, _tokenizer(recipe), out, manifest=manifest, seed=recipe.seed)
    return datasets
