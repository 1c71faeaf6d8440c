"""``medllm data ...``: check, clean, deid, deid-eval, synth-phi, mix, stats. Heavy imports stay inside commands."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from medllm.cli.common import console, fail

data_app = typer.Typer(help="Data: formats in, validation, cleaning, de-identification, mixing, statistics.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def _pairs(text: Optional[str]) -> dict[str, str]:
    """``a=b,c=d`` -> {a: b, c: d}."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        if "=" not in part:
            fail(f"expected key=value, got '{part}'")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _tokenizer(model: Optional[str]):
    if not model:
        return None
    from medllm.models import load_tokenizer

    return load_tokenizer(model)


def _load(path: str, kind: str, fmt: str, columns: Optional[str], skip_invalid: bool = False, **kw):
    from medllm.data import DataError, load_source

    try:
        return load_source(path, kind=kind, format=fmt, columns=_pairs(columns) or None, skip_invalid=skip_invalid, **kw)
    except (DataError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))


KIND = typer.Option("auto", help="auto|text|sft|preference|mcq|ranked|completion")
FORMAT = typer.Option("auto", "--format", help="auto|alpaca|sharegpt|openai|text|preference|ranked|completion|mcq")
COLUMNS = typer.Option(None, help="Column renames, e.g. question=instruction,answer=output")


@data_app.command("check")
def check(paths: list[str] = typer.Argument(..., help="Files or folders."), kind: str = KIND, fmt: str = FORMAT,
          columns: Optional[str] = COLUMNS,
          model: Optional[str] = typer.Option(None, help="Tokenizer for the over-long check."),
          max_tokens: Optional[int] = typer.Option(None, help="Longest allowed sample in tokens (needs --model)."),
          skip_invalid: bool = typer.Option(False, help="Keep the good rows (see --output); write rejects with reasons."),
          rejects: Optional[Path] = typer.Option(None, help="Rejects file (default: <first path>.rejects.jsonl)."),
          output: Optional[Path] = typer.Option(None, help="Write the valid canonical records here (JSONL).")) -> None:
    """Validate files; every problem is listed with file:line. Exit 1 when any exist (unless --skip-invalid)."""
    from medllm.data.export import save_jsonl
    from medllm.data.loader import iter_records

    tok = _tokenizer(model)
    total_bad = 0
    for path in paths:
        rej = (rejects or Path(f"{Path(path).name}.rejects.jsonl")) if skip_invalid else None
        try:
            reader, records = iter_records(path, kind=kind, format=fmt, columns=_pairs(columns) or None,
                                           tokenizer=tok, max_tokens=max_tokens, rejects_path=rej)
            if output:
                save_jsonl(records, output)
            else:
                good = sum(1 for _ in records)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))
        good = reader.count
        for p in reader.problems:
            console.print(str(p), highlight=False, soft_wrap=True)
        total_bad += len(reader.problems)
        fmts = ", ".join(sorted(set(reader.formats.values()))) or "-"
        console.print(f"{path}: {good} valid record(s) ({reader.kind or '?'}; {fmts}), {len(reader.problems)} problem(s)"
                      + (f"; rejects -> {rej}" if rej and reader.problems else ""), highlight=False)
    if total_bad and not skip_invalid:
        raise typer.Exit(1)


@data_app.command("clean")
def clean(path: str = typer.Argument(...), out: Path = typer.Option(..., "--out", help="Cleaned JSONL."),
          kind: str = KIND, fmt: str = FORMAT, columns: Optional[str] = COLUMNS,
          decontaminate: Optional[list[str]] = typer.Option(None, help="Evaluation file(s) whose items must not appear."),
          ngram: int = typer.Option(13), near_threshold: float = typer.Option(0.85),
          near_dedup: bool = typer.Option(True), exact_dedup: bool = typer.Option(True),
          min_chars: int = typer.Option(1), max_chars: Optional[int] = typer.Option(None),
          max_repetition: float = typer.Option(0.5), language: Optional[str] = typer.Option(None),
          report: Optional[Path] = typer.Option(None, help="Report JSON (default: next to --out).")) -> None:
    """Exact and near dedup, length/repetition/language filters, benchmark decontamination."""
    from medllm.config.data import CleanConfig
    from medllm.data.clean import build_decontam_index, clean_dataset
    from medllm.data.export import save_jsonl
    from medllm.io import atomic_write_json

    cfg = CleanConfig(exact_dedup=exact_dedup, near_dedup=near_dedup, near_dedup_threshold=near_threshold,
                      min_chars=min_chars, max_chars=max_chars, max_repetition=max_repetition, language=language,
                      decontaminate=list(decontaminate or []), ngram=ngram)
    loaded = _load(path, kind, fmt, columns)
    index = build_decontam_index(cfg.decontaminate, ngram) if cfg.decontaminate else None
    ds, rep = clean_dataset(loaded.dataset, cfg, decontam=index)
    save_jsonl(ds, out)
    report = report or out.with_suffix(".clean_report.json")
    atomic_write_json(report, rep)
    console.print(f"kept {rep['kept']}/{rep['input']}; removed {rep['removed'] or 'nothing'}; report {report}",
                  highlight=False)


@data_app.command("deid")
def deid(path: str = typer.Argument(...), out: Path = typer.Option(..., "--out"), kind: str = KIND,
         fmt: str = FORMAT, columns: Optional[str] = COLUMNS,
         mode: str = typer.Option("surrogate", help="surrogate|mask"),
         date_shift: bool = typer.Option(True, help="Shift dates per document (else keep the year only)."),
         keep_originals: bool = typer.Option(False, help="Put original values in the audit (keep it private)."),
         ner_model: Optional[str] = typer.Option(None, help="Local spaCy/transformers NER folder for names."),
         keep_facilities: bool = typer.Option(False, help="Keep hospital/clinic/school names (default: replace them)."),
         audit: Optional[Path] = typer.Option(None, help="Span audit JSONL (default: next to --out).")) -> None:
    """Remove/replace HIPAA Safe Harbor identifiers; write a span-level audit."""
    from medllm.config.data import DeidConfig
    from medllm.data.deid.engine import deidentify_dataset
    from medllm.data.export import save_jsonl

    loaded = _load(path, kind, fmt, columns)
    cfg = DeidConfig(enabled=True, mode=mode, date_shift=date_shift, keep_originals_in_audit=keep_originals,
                     ner_model=ner_model, keep_facilities=keep_facilities)
    ds, spans, counts = deidentify_dataset(loaded.dataset, cfg)
    save_jsonl(ds, out)
    audit = audit or out.with_suffix(".deid_audit.jsonl")
    save_jsonl(spans, audit)
    console.print(f"{len(ds)} record(s) -> {out}; replaced {counts or 'nothing'}; audit {audit}", highlight=False)


@data_app.command("synth-phi")
def synth_phi(out: Path = typer.Option(..., "--out"), n: int = typer.Option(500), seed: int = typer.Option(0)) -> None:
    """Synthetic clinical notes with known identifier spans (JSONL: text, spans)."""
    from medllm.data.deid.synth import synth_corpus
    from medllm.data.export import save_jsonl

    save_jsonl(synth_corpus(n, seed), out)
    console.print(f"{n} synthetic notes -> {out}")


@data_app.command("deid-eval")
def deid_eval(notes: Optional[Path] = typer.Option(None, help="JSONL from synth-phi (default: generate)."),
              gold: Optional[str] = typer.Option(None, "--gold", help="Hand-written gold notes (.txt markup or "
                                                 ".jsonl, see docs/privacy.md); 'builtin' = the bundled set."),
              split: str = typer.Option("all", help="Gold split: dev | heldout | fresh | fresh2 … fresh7 | all."),
              n: int = typer.Option(500), seed: int = typer.Option(0),
              out: Optional[Path] = typer.Option(None, help="Report JSON."),
              keep_facilities: bool = typer.Option(False, help="Do not count/remove hospital and clinic names."),
              ner_model: Optional[str] = typer.Option(None)) -> None:
    """Recall per identifier type, precision, misses and clinical terms removed (gold or synthetic notes)."""
    from rich.table import Table

    from medllm.data.deid.engine import Deidentifier
    from medllm.data.deid.evaluate import evaluate_deid
    from medllm.data.deid.gold import GoldError, load_gold
    from medllm.io import atomic_write_json

    if gold:
        try:
            corpus = load_gold(None if gold == "builtin" else Path(gold), split=split)
        except GoldError as exc:
            fail(str(exc))
        if keep_facilities:
            corpus = [dict(c, spans=[s for s in c["spans"] if s["entity"] != "FACILITY"]) for c in corpus]
    elif notes:
        corpus = [json.loads(line) for line in notes.read_text().splitlines() if line.strip()]
    else:
        from medllm.data.deid.synth import synth_corpus

        corpus = synth_corpus(n, seed)
    report = evaluate_deid(corpus, Deidentifier(ner_model=ner_model, keep_facilities=keep_facilities),
                           max_examples=None if gold else 5)
    table = Table("type", "gold", "predicted", "recall", "recall (type)", "precision")
    for e, r in report["per_type"].items():
        table.add_row(e, str(r["gold"]), str(r["predicted"]), *(f"{r[k]:.3f}" if r[k] is not None else "-"
                                                              for k in ("recall", "recall_type_strict", "precision")))
    console.print(table)
    if gold:
        for e, items in report["missed_examples"].items():
            for item in items:
                console.print(f"missed {e}: {item}", highlight=False, markup=False)
        for item in report["clinical_terms"]["removed_list"]:
            console.print(f"clinical term removed: {item}", highlight=False, markup=False)
    c = report["clinical_terms"]
    console.print(f"overall recall {report['overall']['recall']:.4f}, precision {report['overall']['precision']:.4f} "
                  f"on {report['notes']} notes" + (f" ({split}); clinical terms removed {c['removed']} of {c['checked']}"
                                                    if gold else ""), highlight=False)
    if out:
        atomic_write_json(out, report)


@data_app.command("mix")
def mix(sources: list[str] = typer.Argument(..., help="name=path (or a path: name = file stem)."),
        weights: str = typer.Option(..., help="name=weight,... e.g. biomedical=15,clinical=1,general=4"),
        out: Path = typer.Option(..., "--out"), by: str = typer.Option("tokens", help="tokens|samples"),
        total: Optional[int] = typer.Option(None), seed: int = typer.Option(0),
        model: Optional[str] = typer.Option(None, help="Tokenizer for token counts (else chars/4).")) -> None:
    """Weighted, seeded mixture with a manifest (hashes, counts, tokens, achieved ratio)."""
    from medllm.data.export import save_jsonl
    from medllm.data.mix import MixError, mix_datasets
    from medllm.io import atomic_write_json

    loaded, files = {}, {}
    for spec in sources:
        name, _, path = spec.partition("=") if "=" in spec else (Path(spec).stem, "", spec)
        res = _load(path, "auto", "auto", None, name=name)
        loaded[name], files[name] = res.dataset, res.files
    try:
        w = {k: float(v) for k, v in _pairs(weights).items()}
        ds, manifest = mix_datasets(loaded, w, by=by, total=total, seed=seed, tokenizer=_tokenizer(model), files=files)
    except (MixError, ValueError) as exc:
        fail(str(exc))
    save_jsonl(ds, out)
    atomic_write_json(out.with_suffix(".manifest.json"), manifest)
    ratio = ", ".join(f"{k} {manifest['achieved_ratio'][k]:.3f} (target {manifest['target_ratio'][k]:.3f})" for k in w)
    console.print(f"{len(ds)} samples -> {out}; {ratio}", highlight=False)


@data_app.command("stats")
def stats(paths: list[str] = typer.Argument(...), model: Optional[str] = typer.Option(None),
          out_dir: Optional[Path] = typer.Option(None, help="Write PNG histograms and JSON here."),
          kind: str = KIND, fmt: str = FORMAT, columns: Optional[str] = COLUMNS) -> None:
    """Token lengths (prompt/response), turns per dialogue, per-source counts, total tokens."""
    from rich.table import Table

    from medllm.data.stats import dataset_stats

    tok = _tokenizer(model)
    for path in paths:
        res = _load(path, kind, fmt, columns)
        s = dataset_stats(res.dataset, tok, out_dir=out_dir, name=Path(path.replace("builtin:", "")).name)
        table = Table(f"{path} ({res.kind})", "count", "mean", "p50", "p90", "p99", "max")
        for part in ("prompt", "response", "sample"):
            r = s[part]
            table.add_row(f"{part} {s['unit'].split()[0]}", *(str(r.get(k, "-")) for k in ("count", "mean", "p50", "p90", "p99", "max")))
        console.print(table)
        console.print(f"total {s['total_tokens']} {s['unit']}; per source {s['per_source']}"
                      + (f"; turns {s['turns_per_dialogue']['histogram']}" if "turns_per_dialogue" in s else "")
                      + (f"; plot {s['plot']}" if "plot" in s else ""), highlight=False, soft_wrap=True)
