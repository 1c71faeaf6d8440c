"""``load_source``: any supported file/folder/builtin set -> one canonical ``datasets.Dataset``.

Rows stream from the readers through format conversion and validation; problems are
collected (never silently dropped) and either raised together as ``DataError`` or, with
``skip_invalid``, reported on ``Loaded.problems`` and written to a rejects file.
Big inputs (over ``STREAM_BYTES``) go through ``Dataset.from_generator``, which writes Arrow
in batches, so memory stays bounded whatever the file size.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from medllm.data.formats import FORMAT_KIND, RowError, convert, describe_keys, detect_format, sample_text
from medllm.data.problems import DataError, Problem
from medllm.data.readers import RawRow, list_data_files, read_rows

BUILTIN_PREFIX = "builtin:"
STREAM_BYTES = 64 << 20
DETECT_WINDOW = 50
# kind -> formats that produce it (``ranked``/``completion`` are kinds in recipes too)
KIND_FORMATS = {
    "sft": {"alpaca", "sharegpt", "openai", "completion"},
    "preference": {"preference", "ranked"},
    "text": {"text"},
    "mcq": {"mcq"},
    "ranked": {"ranked"},
    "completion": {"completion"},
}


def features_for(kind: str):
    from datasets import Features, List, Value

    msg = {"role": Value("string"), "content": Value("string")}
    if kind == "text":
        return Features({"text": Value("string"), "source": Value("string")})
    if kind == "sft":
        return Features({"messages": List(msg), "source": Value("string")})
    if kind == "preference":
        return Features({"prompt": List(msg), "chosen": List(msg), "rejected": List(msg), "source": Value("string")})
    if kind == "mcq":
        return Features({"id": Value("string"), "question": Value("string"), "choices": List(Value("string")),
                         "answer": Value("int64"), "topic": Value("string")})
    if kind == "fact_qa":
        return Features({"id": Value("string"), "question": Value("string"), "fact": Value("string"),
                         "answers": List(Value("string")), "need_all": Value("bool"), "topic": Value("string"),
                         "entity": Value("string")})
    raise ValueError(f"unknown kind {kind!r}")


@dataclass
class Loaded:
    kind: str
    dataset: Any
    problems: list[Problem] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    """file -> detected (or given) format."""
    files: list[str] = field(default_factory=list)


@dataclass
class _Options:
    kind: str = "auto"
    format: str = "auto"
    columns: dict | None = None
    max_samples: int | None = None
    ranked_pairs: str = "adjacent"
    source: str = ""
    tokenizer: Any = None
    max_tokens: int | None = None


class SourceReader:
    """Streams canonical records out of files, collecting problems and rejects as it goes."""

    def __init__(self, files: list[Path], opts: _Options, rejects_path: Path | None = None):
        self.files, self.opts = files, opts
        self.problems: list[Problem] = []
        self.formats: dict[str, str] = {}
        self.kind: str | None = None
        self.count = 0
        self._ids: dict[str, str] = {}
        self._rejects = open(rejects_path, "w", encoding="utf-8") if rejects_path else None

    def _reject(self, file: str, line: int, message: str, record: Any = None) -> None:
        p = Problem(file, line, message)
        self.problems.append(p)
        if self._rejects:
            self._rejects.write(json.dumps({"file": file, "line": line, "reason": message, "record": record},
                                           ensure_ascii=False, default=str) + "\n")

    def __iter__(self) -> Iterator[dict]:
        try:
            for path in self.files:
                for rec in self._file_records(path):
                    yield rec
                    self.count += 1
                    if self.opts.max_samples and self.count >= self.opts.max_samples:
                        return
        finally:
            if self._rejects:
                self._rejects.close()
                self._rejects = None

    def _allowed_formats(self) -> set[str]:
        if self.opts.format != "auto":
            return {self.opts.format}
        if self.opts.kind != "auto":
            return KIND_FORMATS[self.opts.kind]
        return set(FORMAT_KIND)

    def _file_records(self, path: Path) -> Iterator[dict]:
        name = str(path)
        rows = read_rows(path)
        fmt = self.opts.format if self.opts.format != "auto" else None
        buffered: list[RawRow] = []
        if fmt is None:  # look at the first readable records to decide the file's format
            for row in rows:
                buffered.append(self._rename(row))
                if row.record is not None and (f := detect_format(buffered[-1].record)) in self._allowed_formats():
                    fmt = f
                    break
                if len(buffered) >= DETECT_WINDOW:
                    break
            if fmt is None:
                first = next((r for r in buffered if r.record is not None), None)
                why = describe_keys(first.record) if first else "no readable records"
                for r in buffered:
                    if r.error:
                        self._reject(name, r.line, r.error)
                if first is not None:
                    wanted = "" if self.opts.kind == "auto" else f" for kind '{self.opts.kind}'"
                    self._reject(name, first.line, f"unrecognised format{wanted}: {why}")
                return
        kind = FORMAT_KIND[fmt]
        if self.kind is None:
            self.kind = kind
        elif kind != self.kind:
            self._reject(name, 1, f"this file holds {kind} records ({fmt}) but earlier files hold {self.kind}; "
                                  "put different kinds in different sources")
            return
        self.formats[name] = fmt
        from itertools import chain

        for row in chain(buffered, (self._rename(r) for r in rows)):
            yield from self._row_records(name, row, fmt)

    def _rename(self, row: RawRow) -> RawRow:
        if self.opts.columns and isinstance(row.record, dict):
            row.record = {self.opts.columns.get(k, k): v for k, v in row.record.items()}
        return row

    def _row_records(self, name: str, row: RawRow, fmt: str) -> Iterator[dict]:
        if row.error:
            self._reject(name, row.line, row.error)
            return
        try:
            out = convert(row.record, fmt, ranked_pairs=self.opts.ranked_pairs)
        except RowError as exc:
            self._reject(name, row.line, str(exc), row.record)
            return
        rid = row.record.get("id") if isinstance(row.record, dict) else None
        if rid is not None and str(rid) != "":
            where = f"{name}:{row.line}"
            if str(rid) in self._ids:
                self._reject(name, row.line, f"duplicate id {rid!r} (first at {self._ids[str(rid)]})", row.record)
                return
            self._ids[str(rid)] = where
        if self.opts.tokenizer is not None and self.opts.max_tokens:
            for rec in out:
                n = len(self.opts.tokenizer(sample_text(rec), add_special_tokens=False)["input_ids"])
                n += 4 * len(rec.get("messages", []))  # chat-template tokens per turn
                if n > self.opts.max_tokens:
                    self._reject(name, row.line, f"over-long sample: {n} tokens > max_tokens {self.opts.max_tokens}",
                                 row.record)
                    return
        for rec in out:
            if FORMAT_KIND[fmt] == "mcq":
                rec["id"] = rec["id"] or f"{Path(name).stem}-{row.line}"
            else:
                rec["source"] = self.opts.source
            yield rec


def resolve_files(path: str | Path) -> list[Path]:
    return list_data_files(Path(path).expanduser())


def load_source(path: str | Path, *, kind: str = "auto", format: str = "auto", columns: dict | None = None,
                max_samples: int | None = None, skip_invalid: bool = False, ranked_pairs: str = "adjacent",
                name: str | None = None, tokenizer: Any = None, max_tokens: int | None = None,
                rejects_path: str | Path | None = None, seed: int = 0) -> Loaded:
    """Load one source into a canonical dataset. Raises ``DataError`` listing every problem
    (``file:line: reason``) unless ``skip_invalid``; then rejects go to ``rejects_path`` (if given)."""
    text = str(path)
    if text.startswith(BUILTIN_PREFIX):
        from medllm.data.builtin import BUILTIN_KINDS, load_builtin

        set_name = text[len(BUILTIN_PREFIX):]
        ds = load_builtin(set_name, seed=seed)
        if max_samples:
            ds = ds.select(range(min(max_samples, len(ds))))
        return Loaded(BUILTIN_KINDS[set_name], ds, [], {text: "builtin"}, [text])
    if format != "auto" and format not in FORMAT_KIND:
        raise ValueError(f"unknown format {format!r} (have: auto, {', '.join(FORMAT_KIND)})")
    if kind != "auto" and kind not in KIND_FORMATS:
        raise ValueError(f"unknown kind {kind!r} (have: auto, {', '.join(KIND_FORMATS)})")
    files = resolve_files(path)
    opts = _Options(kind, format, columns, max_samples, ranked_pairs, name or Path(text).stem, tokenizer, max_tokens)
    reader = SourceReader(files, opts, Path(rejects_path) if rejects_path else None)
    big = sum(f.stat().st_size for f in files) > STREAM_BYTES
    dataset = _build(reader, big)
    if reader.problems and not skip_invalid:
        raise DataError(reader.problems)
    out_kind = reader.kind or (FORMAT_KIND[format] if format != "auto" else
                               {"ranked": "preference", "completion": "sft"}.get(kind, kind))
    if out_kind == "auto":
        raise DataError(reader.problems or [Problem(text, 1, "no records")])
    return Loaded(out_kind, dataset, reader.problems, reader.formats, [str(f) for f in files])


def _build(reader: SourceReader, big: bool):
    from datasets import Dataset

    if not big:
        rows = list(reader)
        return Dataset.from_list(rows, features=features_for(reader.kind)) if reader.kind else None
    # datasets hashes the generator function and its kwargs (so they must pickle): the live iterator
    # waits in a registry under a fresh key, and each load is new, so problems are always collected.
    from medllm.paths import medllm_home

    key = uuid.uuid4().hex
    _STREAMS[key] = iter(reader)
    try:
        ds = Dataset.from_generator(_stream_records, gen_kwargs={"key": key},
                                    cache_dir=str(medllm_home() / "cache" / "datasets"))
    finally:
        _STREAMS.pop(key, None)
    return ds.cast(features_for(reader.kind)) if reader.kind and len(ds) else (ds if len(ds) else None)


_STREAMS: dict[str, Iterator[dict]] = {}


def _stream_records(key: str) -> Iterator[dict]:
    yield from _STREAMS[key]


def iter_records(path: str | Path, **kwargs: Any) -> tuple[SourceReader, Iterator[dict]]:
    """Stream canonical records without building a dataset (``medllm data check`` on any size)."""
    opts = _Options(**{k: v for k, v in kwargs.items() if k in _Options.__dataclass_fields__})
    if not opts.source:
        opts.source = Path(str(path)).stem
    reader = SourceReader(resolve_files(path), opts, kwargs.get("rejects_path"))
    return reader, iter(reader)


def empty_dataset(kind: str):
    from datasets import Dataset

    return Dataset.from_list([], features=features_for(kind))
