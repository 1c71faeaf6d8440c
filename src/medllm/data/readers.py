"""Raw rows out of files, each with the line it starts on.

Every reader is a generator (a 1M-line JSONL file is never held in memory) yielding
``RawRow(line, record)`` or ``RawRow(line, None, error)`` for rows that cannot be read at all
(malformed JSON, non-UTF-8 bytes). Nothing is dropped silently: unreadable rows come back as errors.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt")
# files that sit next to data in public dumps and are not data
NOT_DATA_PREFIXES = ("license", "licence", "copying", "notice", "readme", "source", "citation")


@dataclass
class RawRow:
    line: int
    record: Any
    error: str | None = None


def list_data_files(path: Path) -> list[Path]:
    """One file, or every data file under a folder (sorted, licence/readme files skipped)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    files = [p for p in sorted(path.rglob("*"))
             if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and not p.name.startswith(".")
             and not p.name.lower().startswith(NOT_DATA_PREFIXES)]
    if not files:
        raise FileNotFoundError(f"{path}: folder holds no data files ({', '.join(DATA_SUFFIXES)})")
    return files


def read_rows(path: Path) -> Iterator[RawRow]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        return _read_json(path)
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix == ".txt":
        return _read_txt(path)
    raise ValueError(f"{path}: unsupported file type '{suffix}' (use {', '.join(DATA_SUFFIXES)})")


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RawRow(lineno, None, f"non-UTF-8 bytes at column {exc.start + 1}")
                continue
            try:
                yield RawRow(lineno, json.loads(text))
            except json.JSONDecodeError as exc:
                yield RawRow(lineno, None, f"malformed JSON: {exc.msg} (column {exc.colno})")


def _has_surrogates(obj: Any) -> bool:
    if isinstance(obj, str):
        return any("\udc80" <= ch <= "\udcff" for ch in obj)
    if isinstance(obj, dict):
        return any(_has_surrogates(k) or _has_surrogates(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_surrogates(v) for v in obj)
    return False


def _read_json(path: Path) -> Iterator[RawRow]:
    """A JSON array of records (or a dict of records keyed by id, as PubMedQA ships).
    Elements are decoded one by one so each carries its own line number; non-UTF-8 bytes
    survive decoding as surrogates and are reported on the element that holds them."""
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    dec = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos < len(text) and text[pos] not in "[{":
        # not an array/object: maybe JSON Lines saved with a .json name
        yield from _read_jsonl(path)
        return
    if pos >= len(text):
        return
    opener = text[pos]
    if opener == "{":
        try:
            obj, _ = dec.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield RawRow(exc.lineno, None, f"malformed JSON: {exc.msg} (column {exc.colno})")
            return
        if _looks_keyed(obj):
            for key, value in obj.items():
                rec = dict(value)
                rec.setdefault("id", key)
                yield RawRow(_line_of(text, text.find(json.dumps(key), pos)), rec)
        else:
            yield RawRow(_line_of(text, pos), obj)
        return
    pos = _skip_ws(text, pos + 1)
    line_cache = _LineIndex(text)
    while pos < len(text) and text[pos] != "]":
        try:
            obj, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            # cannot resynchronise inside a broken array reliably: report and stop
            yield RawRow(exc.lineno, None, f"malformed JSON: {exc.msg} (column {exc.colno}); "
                                           "the rest of this file was not read")
            return
        line = line_cache.line(pos)
        if _has_surrogates(obj):
            yield RawRow(line, None, "non-UTF-8 bytes in this record")
        else:
            yield RawRow(line, obj)
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            yield RawRow(line_cache.line(pos), None, "malformed JSON: expected ',' or ']' between records; "
                                                     "the rest of this file was not read")
            return


def _looks_keyed(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, dict) for v in obj.values()) and len(obj) > 1


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


class _LineIndex:
    """Line numbers for increasing offsets without rescanning from the start."""

    def __init__(self, text: str):
        self.text, self.pos, self.lineno = text, 0, 1

    def line(self, offset: int) -> int:
        if offset < self.pos:
            return _line_of(self.text, offset)
        self.lineno += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.lineno


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, max(offset, 0)) + 1


MCQ_LETTERS = "ABCDEFGH"


def _read_csv(path: Path) -> Iterator[RawRow]:
    """CSV with a header row; a header-less file whose last column is a letter A-D
    (the MMLU layout: question, A, B, C, D, answer) is read as multiple choice."""
    # streamed; undecodable bytes survive as surrogates and are reported on the row that holds them
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        yield from _csv_rows(path, csv.reader(fh))


def _csv_rows(path: Path, reader) -> Iterator[RawRow]:
    header = None
    start = 1
    for row in reader:
        if header is None:
            if _headerless_mcq(row):
                header = ["question"] + [f"choice_{i}" for i in range(len(row) - 2)] + ["answer"]
                yield _csv_row(path, start, header, row)
            else:
                header = [h.strip() for h in row]
            start = reader.line_num + 1
            continue
        if not any(cell.strip() for cell in row):
            start = reader.line_num + 1
            continue
        yield _csv_row(path, start, header, row)
        start = reader.line_num + 1


def _headerless_mcq(row: list[str]) -> bool:
    known = {"question", "instruction", "text", "prompt", "input", "output", "answer", "chosen"}
    return len(row) >= 4 and row[-1].strip() in MCQ_LETTERS[: len(row) - 2] and not (known & {c.lower() for c in row})


def _csv_row(path: Path, line: int, header: list[str], row: list[str]) -> RawRow:
    if len(row) != len(header):
        return RawRow(line, None, f"CSV row has {len(row)} fields, header has {len(header)}")
    rec = dict(zip(header, row))
    if _has_surrogates(rec):
        return RawRow(line, None, "non-UTF-8 bytes in this row")
    if "choice_0" in rec:  # header-less MCQ
        choices = [rec.pop(k) for k in sorted(k for k in list(rec) if k.startswith("choice_"))]
        rec["choices"] = choices
        rec["answer"] = MCQ_LETTERS.index(rec["answer"].strip())
    return RawRow(line, rec)


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for rec in batch.to_pylist():
            row += 1
            yield RawRow(row, rec)


def _read_txt(path: Path) -> Iterator[RawRow]:
    """Plain text: one document per blank-line-separated block, streamed line by line."""
    block: list[str] = []
    start = 0
    bad = None
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = bad or f"non-UTF-8 bytes on line {lineno} at column {exc.start + 1}"
                line = raw.decode("utf-8", errors="replace")
            if line.strip():
                if not block:
                    start = lineno
                block.append(line.rstrip("\n"))
            elif block:
                yield _txt_block(start, block, bad)
                block, bad = [], None
    if block:
        yield _txt_block(start, block, bad)


def _txt_block(start: int, block: list[str], bad: str | None) -> RawRow:
    if bad:
        return RawRow(start, None, bad)
    return RawRow(start, {"text": "\n".join(block)})
