"""Read a task's local file in its standard public format into canonical examples.

Every problem names the file, the line (or record) and the field, and nothing is guessed:
a label outside the task's label set is an error, not a silent skip.

Canonical example fields by task type (plus ``id`` always):
  mcq            question, choices (list[str]), answer (0-based int), [context], [subject]
  extractive_qa  context, question, answers (list[str])
  ner            tokens (list[str]), tags (list[str], BIO)
  relation / classification / nli   text | premise+hypothesis, label (str in spec.labels)
  multilabel     text, labels (list[str] within spec.labels)
  summarization  source, target
  diagnosis      case, diagnosis (list[str]: gold name and accepted synonyms)
  fact_qa        question, answers (list[str]: key parts, any one stated counts), [need_all], [fact]
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any, Iterator

from medllm.eval.spec import TaskSpec

LETTERS = "ABCDEFGHIJ"
REQUIRED = {
    "mcq": ("question", "choices", "answer"),
    "extractive_qa": ("context", "question", "answers"),
    "ner": ("tokens", "tags"),
    "relation": ("text", "label"),
    "classification": ("text", "label"),
    "multilabel": ("text", "labels"),
    "summarization": ("source", "target"),
    "nli": ("premise", "hypothesis", "label"),
    "diagnosis": ("case", "diagnosis"),
    "fact_qa": ("question", "answers"),
}


class TaskDataError(ValueError):
    """Bad task data; the message starts with ``file:line: field 'x':``."""


def _err(where: str, field: str, msg: str) -> TaskDataError:
    return TaskDataError(f"{where}: field '{field}': {msg}")


# ----------------------------------------------------------------- raw readers -> (where, record)
def _read_jsonl(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskDataError(f"{path}:{i}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(rec, dict):
                raise TaskDataError(f"{path}:{i}: expected a JSON object, got {type(rec).__name__}")
            yield f"{path}:{i}", rec


def _read_json(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskDataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if isinstance(data, dict):  # keyed by id (PubMedQA ori_pqal.json style)
        for key, rec in data.items():
            if not isinstance(rec, dict):
                raise TaskDataError(f"{path}: record '{key}': expected an object")
            yield f"{path}: record '{key}'", {"__key__": key, **rec}
    elif isinstance(data, list):
        for i, rec in enumerate(data):
            if not isinstance(rec, dict):
                raise TaskDataError(f"{path}: item {i}: expected an object")
            yield f"{path}: item {i}", rec
    else:
        raise TaskDataError(f"{path}: expected a JSON list or object")


def _read_csv(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for rec in reader:
            yield f"{path}:{reader.line_num}", rec


def _read_pubmedqa(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    reader = _read_json if path.suffix == ".json" else _read_jsonl
    for where, rec in reader(path, spec):
        ctx = rec.get("CONTEXTS")
        if not isinstance(ctx, list):
            raise _err(where, "CONTEXTS", "missing or not a list of strings")
        yield where, {"id": str(rec.get("pubid", rec.get("__key__", ""))), "question": rec.get("QUESTION"),
                      "context": "\n".join(map(str, ctx)), "label": rec.get("final_decision")}


def _read_mmlu_csv(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise TaskDataError(f"{path}: no .csv files (expected MMLU '<subject>_test.csv' files)")
    for f in files:
        subject = f.stem.removesuffix("_test").removesuffix("_dev").removesuffix("_val")
        with open(f, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            for row in reader:
                where = f"{f}:{reader.line_num}"
                if len(row) != 6:
                    raise TaskDataError(f"{where}: expected 6 columns (question,A,B,C,D,answer), got {len(row)}")
                yield where, {"id": f"{subject}-{reader.line_num}", "question": row[0], "choices": row[1:5],
                              "answer": row[5].strip(), "subject": subject}


def _read_medqa(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    for where, rec in _read_jsonl(path, spec):
        opts = rec.get("options")
        if not isinstance(opts, dict) or not opts:
            raise _err(where, "options", "missing or not a mapping like {\"A\": ..., \"B\": ...}")
        keys = sorted(opts)
        if keys != list(LETTERS[:len(keys)]):
            raise _err(where, "options", f"keys must be A, B, C... in order, got {keys}")
        yield where, {"id": str(rec.get("id", where.rsplit(":", 1)[-1])), "question": rec.get("question"),
                      "choices": [opts[k] for k in keys], "answer": rec.get("answer_idx"),
                      "subject": rec.get("meta_info", "")}


def _read_medmcqa(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    base = int(spec.fields.get("cop_base", "1"))  # the raw release is 1-based; the HF copy is 0-based
    for where, rec in _read_jsonl(path, spec):
        cop = rec.get("cop")
        if not isinstance(cop, int) or not base <= cop <= base + 3:
            raise _err(where, "cop", f"must be an integer {base}..{base + 3} (correct option, "
                                     f"{'1' if base == 1 else '0'}-based), got {cop!r}")
        yield where, {"id": str(rec.get("id", where)), "question": rec.get("question"),
                      "choices": [rec.get(k) for k in ("opa", "opb", "opc", "opd")], "answer": cop - base,
                      "subject": rec.get("subject_name", "")}


def _read_squad(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise TaskDataError(f"{path}: field 'data': expected SQuAD JSON {{\"data\": [{{\"paragraphs\": ...}}]}}")
    for a, art in enumerate(data["data"]):
        for p, para in enumerate(art.get("paragraphs", [])):
            for q, qa in enumerate(para.get("qas", [])):
                where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}]"
                answers = [x.get("text") for x in qa.get("answers", []) if isinstance(x, dict)]
                yield where, {"id": str(qa.get("id", f"{a}-{p}-{q}")), "context": para.get("context"),
                              "question": qa.get("question"), "answers": answers}


def _read_conll(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    tokens, tags, start = [], [], 1
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            parts = line.split()
            if not parts or line.startswith("-DOCSTART-"):
                if tokens:
                    yield f"{path}:{start}", {"id": f"s{start}", "tokens": tokens, "tags": tags}
                tokens, tags, start = [], [], i + 1
                continue
            if len(parts) < 2:
                raise _err(f"{path}:{i}", "tag", "expected 'TOKEN ... TAG' (tag in the last column)")
            tag = parts[-1]
            if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
                raise _err(f"{path}:{i}", "tag", f"'{tag}' is not a BIO tag (O, B-TYPE, I-TYPE)")
            tokens.append(parts[0])
            tags.append(tag)
    if tokens:
        yield f"{path}:{start}", {"id": f"s{start}", "tokens": tokens, "tags": tags}


def _read_brat(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    """A folder of ``NAME.txt`` + ``NAME.ann`` (T lines: ``T1<TAB>TYPE START END<TAB>text``)."""
    import re

    for txt in sorted(path.glob("*.txt")):
        text = txt.read_text(encoding="utf-8")
        ann = txt.with_suffix(".ann")
        spans = []
        if ann.is_file():
            for i, line in enumerate(ann.read_text(encoding="utf-8").splitlines(), 1):
                if not line.startswith("T"):
                    continue
                try:
                    _, mid, _surface = line.split("\t", 2)
                    etype, start, end = mid.split(" ")[0], int(mid.split(" ")[1]), int(mid.split(" ")[-1])
                except (ValueError, IndexError):
                    raise _err(f"{ann}:{i}", "span", "expected 'T1<TAB>TYPE START END<TAB>text'") from None
                if not 0 <= start < end <= len(text):
                    raise _err(f"{ann}:{i}", "span", f"offsets {start}-{end} outside the text ({len(text)} chars)")
                spans.append((start, end, etype))
        toks = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\w+|[^\w\s]", text)]
        tags = ["O"] * len(toks)
        for start, end, etype in spans:
            inside = [k for k, (s, e, _) in enumerate(toks) if s >= start and e <= end]
            for n, k in enumerate(inside):
                tags[k] = ("B-" if n == 0 else "I-") + etype
        yield str(txt), {"id": txt.stem, "tokens": [t[2] for t in toks], "tags": tags}


def _tsv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with open(path, encoding="utf-8", newline="") as fh:
        for i, line in enumerate(fh, 1):
            if line.strip():
                yield i, line.rstrip("\r\n").split("\t")


HEADER_WORDS = {"index", "id", "sentence", "text", "label", "labels", "sentence1", "sentence2", "gold_label"}


def _read_tsv(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    """BLURB/BLUE-style TSV: a header row (``index<TAB>sentence<TAB>label``, or any column names,
    mapped by ``fields:``) or none: ``sentence<TAB>label`` / ``id<TAB>sentence<TAB>label``."""
    header, first = None, True
    for i, cells in _tsv_rows(path):
        if first and {c.strip().lower() for c in cells} & (HEADER_WORDS | {v.lower() for v in spec.fields.values()}):
            header, first = [c.strip() for c in cells], False
            continue
        first = False
        where = f"{path}:{i}"
        if header:
            if len(cells) != len(header):
                raise TaskDataError(f"{where}: expected {len(header)} tab-separated columns "
                                    f"({', '.join(header)}), got {len(cells)}")
            rec = dict(zip(header, cells))
            rec.setdefault("text", rec.get("sentence"))
            rec.setdefault("id", rec.get("index"))
            yield where, rec
        elif len(cells) == 2:
            yield where, {"text": cells[0], "label": cells[1], "labels": cells[1]}
        elif len(cells) == 3:
            yield where, {"id": cells[0], "text": cells[1], "label": cells[2], "labels": cells[2]}
        else:
            raise TaskDataError(f"{where}: expected 'sentence<TAB>label' or 'id<TAB>sentence<TAB>label' "
                                f"(or a header row), got {len(cells)} columns")


def _strip_prefix_labels(rec: dict) -> dict:
    """DDI-2013 TSVs label 'DDI-mechanism', 'DDI-false'; the task's labels are the bare names."""
    lab = rec.get("label")
    if isinstance(lab, str) and lab.strip().lower().startswith("ddi-"):
        rec = {**rec, "label": lab.strip()[4:].lower()}
    return rec


def _read_ddi_xml_file(f: Path) -> Iterator[tuple[str, dict]]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(f).getroot()
    except ET.ParseError as exc:
        raise TaskDataError(f"{f}:{exc.position[0]}: invalid XML ({exc}); expected the DDI-2013 corpus "
                            "<document><sentence text=...><entity charOffset=...><pair e1 e2 ddi type>") from None
    for sent in root.iter("sentence"):
        sid = sent.get("id", "?")
        where = f"{f}: sentence '{sid}'"
        text = sent.get("text")
        if text is None:
            raise _err(where, "text", "missing attribute on <sentence>")
        ents = {}
        for e in sent.findall("entity"):
            off = e.get("charOffset")
            if not e.get("id") or not off:
                raise _err(where, "entity.charOffset", "each <entity> needs id and charOffset='START-END'")
            try:  # END is inclusive; discontinuous mentions "a-b;c-d" are masked as one span a..d
                parts = [tuple(int(x) for x in span.split("-")) for span in off.split(";")]
            except ValueError:
                raise _err(where, "entity.charOffset", f"'{off}' is not START-END[;START-END]") from None
            ents[e.get("id")] = (parts[0][0], parts[-1][1] + 1)
        for pair in sent.findall("pair"):
            pid, e1, e2, ddi = pair.get("id"), pair.get("e1"), pair.get("e2"), pair.get("ddi")
            if e1 not in ents or e2 not in ents or ddi not in ("true", "false"):
                raise _err(f"{where} pair '{pid}'", "pair", "needs e1, e2 naming entities of the sentence "
                                                           "and ddi='true'|'false'")
            label = (pair.get("type") or "int").lower() if ddi == "true" else "false"
            masked = text
            for start, end in sorted((ents[e1], ents[e2]), reverse=True):
                masked = masked[:start] + "@DRUG$" + masked[end:]
            yield f"{where} pair '{pid}'", {"id": pid or f"{sid}-{e1}-{e2}", "text": masked, "label": label}


def _read_ddi(path: Path, spec: TaskSpec) -> Iterator[tuple[str, dict]]:
    """DDI-2013 as released: the XML corpus (a folder searched recursively, or one .xml file),
    the BLURB/BLUE masked TSV (``@DRUG$`` masks, ``DDI-*`` labels), or JSONL."""
    if path.is_dir() or path.suffix.lower() == ".xml":
        files = sorted(path.rglob("*.xml")) if path.is_dir() else [path]
        if not files:
            raise TaskDataError(f"{path}: no .xml files (expected the DDI-2013 corpus folder, e.g. "
                                "Test/Test for DDI Extraction task/DrugBank/*.xml)")
        for f in files:
            yield from _read_ddi_xml_file(f)
        return
    reader = _read_tsv if path.suffix.lower() in (".tsv", ".txt") else _read_jsonl
    for where, rec in reader(path, spec):
        yield where, _strip_prefix_labels(rec)


READERS = {"jsonl": _read_jsonl, "tsv": _read_tsv, "ddi": _read_ddi, "json": _read_json, "csv": _read_csv, "pubmedqa": _read_pubmedqa,
           "mmlu_csv": _read_mmlu_csv, "medqa": _read_medqa, "medmcqa": _read_medmcqa, "squad": _read_squad,
           "conll": _read_conll, "brat": _read_brat}

# What each reader accepts, for ``medllm eval list-tasks`` and error messages.
FORMATS: dict[str, list[str]] = {
    "jsonl": ["JSONL, one object per line (fields: maps columns)", "a .tsv file: BLURB-style TSV"],
    "json": ["JSON list of objects, or an object keyed by id"],
    "csv": ["CSV with a header row (fields: maps columns)", "a .tsv file: BLURB-style TSV"],
    "tsv": ["BLURB/BLUE TSV: header row, or sentence<TAB>label, or", "id<TAB>sentence<TAB>label"],
    "pubmedqa": ["PubMedQA ori_pqal.json / pqal_*.jsonl (QUESTION, CONTEXTS, final_decision)"],
    "mmlu_csv": ["MMLU CSV folder/file: question,A,B,C,D,answer (no header)"],
    "medqa": ["MedQA JSONL as released: question, options {A..E}, answer_idx"],
    "medmcqa": ["MedMCQA dev.json/JSONL: question, opa..opd, cop (1-based)"],
    "squad": ["SQuAD v1 / emrQA JSON: data[].paragraphs[].qas[]"],
    "conll": ["CoNLL/BIO: TOKEN ... TAG per line, blank line between sentences"],
    "brat": ["brat folder: NAME.txt + NAME.ann (T lines)"],
    "ddi": ["DDI-2013 XML corpus folder or .xml (sentence/entity/pair, type=)",
            "BLURB masked TSV (@DRUG$, DDI-* labels), with/without header", "JSONL {text, label}"],
}


# ----------------------------------------------------------------- canonicalise + validate
def _as_list(value: Any) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, str):  # "a; b" or "a|b" in CSV cells
        sep = ";" if ";" in value else "|" if "|" in value else ","
        return [v.strip() for v in value.split(sep) if v.strip()]
    return [value]


def _multilabels(spec: TaskSpec, where: str, raw: Any) -> list[str]:
    """Label names (a list or 'a; b' string), 'none'/empty for no label, or BLURB HoC's forms:
    a 0/1 vector over ``labels`` or 'index_value' pairs ('0_1,1_0,...')."""
    field = spec.fields.get("labels", "labels")
    values = _as_list(raw) if raw not in ("", None) else []
    labels = spec.labels or []
    if values and labels and len(values) == len(labels) and all(str(v).strip() in ("0", "1") for v in values):
        return [lab for lab, v in zip(labels, values) if str(v).strip() == "1"]
    if values and all(isinstance(v, str) and re.fullmatch(r"\d+_[01]", v.strip()) for v in values) and labels:
        out = []
        for v in values:
            k, on = (int(x) for x in v.strip().split("_"))
            if k >= len(labels):
                raise _err(where, field, f"'{v}': label index {k} outside the {len(labels)} labels")
            if on:
                out.append(labels[k])
        return out
    if len(values) == 1 and str(values[0]).strip().lower() in ("none", "[]", "null"):
        return []
    return [_label(spec, where, field, v) for v in values]


def _label(spec: TaskSpec, where: str, field: str, raw: Any) -> str:
    value = spec.label_map.get(str(raw), str(raw)).strip() if raw is not None else ""
    if spec.labels is not None and value not in spec.labels:
        raise _err(where, field, f"label {raw!r} is not one of {spec.labels}"
                                 + (f" (after label_map {spec.label_map})" if spec.label_map else ""))
    return value


def canonical(spec: TaskSpec, where: str, rec: dict, index: int) -> dict:
    """Map a raw record through ``spec.fields`` and check every required field."""
    ex = {canon: rec.get(col) for canon, col in spec.fields.items() if col in rec}
    for key, value in rec.items():
        ex.setdefault(key, value)
    ex["id"] = str(ex.get("id") or index)
    required = ("question", "label") if spec.type == "mcq" and spec.labels is not None else REQUIRED[spec.type]
    for field in required:
        src = spec.fields.get(field, field)
        if spec.type == "multilabel" and field == "labels" and ex.get(field) is not None:
            continue  # an empty label set is a valid answer (HoC abstracts without a hallmark)
        if ex.get(field) is None or (isinstance(ex.get(field), (str, list)) and not ex.get(field)):
            raise _err(where, {"label": "final_decision"}.get(src, src) if spec.format == "pubmedqa" else src,
                       "missing or empty")
    t = spec.type
    if t == "mcq":
        if spec.labels is not None:  # closed label set (PubMedQA): choices are the labels
            ex["choices"] = list(spec.labels)
            label_field = "final_decision" if spec.format == "pubmedqa" else spec.fields.get("label", "label")
            ex["answer"] = spec.labels.index(_label(spec, where, label_field, ex["label"]))
        else:
            choices = ex["choices"]
            if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
                raise _err(where, spec.fields.get("choices", "choices"), "must be a list of 2+ non-empty strings")
            ans = ex["answer"]
            if isinstance(ans, str) and len(ans.strip()) == 1 and ans.strip().upper() in LETTERS:
                ans = LETTERS.index(ans.strip().upper())
            elif isinstance(ans, str) and ans.strip().isdigit():
                ans = int(ans)
            if isinstance(ans, bool) or not isinstance(ans, int) or not 0 <= ans < len(choices):
                raise _err(where, spec.fields.get("answer", "answer"),
                           f"answer {ex['answer']!r} is not a letter A-{LETTERS[len(choices) - 1]} "
                           f"or a 0-based index < {len(choices)}")
            ex["answer"] = ans
    elif t in ("relation", "classification", "nli"):
        ex["label"] = _label(spec, where, spec.fields.get("label", "label"), ex["label"])
    elif t == "multilabel":
        ex["labels"] = _multilabels(spec, where, ex["labels"])
    elif t == "extractive_qa":
        ex["answers"] = [str(a) for a in _as_list(ex["answers"]) if a]
        if not ex["answers"]:
            raise _err(where, "answers", "no answer text")
    elif t == "diagnosis":
        ex["diagnosis"] = [str(d) for d in _as_list(ex["diagnosis"])]
    elif t == "ner":
        if len(ex["tokens"]) != len(ex["tags"]):
            raise _err(where, "tags", f"{len(ex['tags'])} tags for {len(ex['tokens'])} tokens")
    return ex


def load_examples(spec: TaskSpec, path: str | Path | None, *, limit: int | None = None, sample: str = "first",
                  seed: int = 1234) -> list[dict]:
    """Examples of a task; ``limit`` keeps the first N, or with ``sample="random"`` a seeded
    random N in their original order."""
    if sample == "random" and limit is not None:
        import random

        everything = load_examples(spec, path)
        keep = sorted(random.Random(seed).sample(range(len(everything)), min(limit, len(everything))))
        return [everything[i] for i in keep]
    if spec.builtin_data:
        return _builtin_examples(spec, limit)
    if path is None:
        raise TaskDataError(f"task '{spec.name}' needs a data file (path:); expected format: "
                            f"{spec.data_doc or spec.format}" + (f"; public copy usually at {spec.default_path}"
                                                                 if spec.default_path else ""))
    path = Path(path).expanduser()
    if not path.exists():
        raise TaskDataError(f"{path}: file not found (task '{spec.name}')")
    reader = READERS.get(spec.format)
    if path.suffix.lower() == ".tsv" and spec.format in ("jsonl", "json", "csv"):
        reader = _read_tsv
    if reader is None:
        raise TaskDataError(f"task '{spec.name}': unknown format '{spec.format}' (known: {', '.join(READERS)})")
    out, seen = [], set()
    for i, (where, rec) in enumerate(reader(path, spec)):
        ex = canonical(spec, where, rec, i)
        if ex["id"] in seen:  # ids key the resumable cache, so they must be unique
            ex["id"] = f"{ex['id']}#{i}"
        seen.add(ex["id"])
        out.append(ex)
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise TaskDataError(f"{path}: no examples found for task '{spec.name}' (format {spec.format})")
    return out


def _builtin_examples(spec: TaskSpec, limit: int | None) -> list[dict]:
    from medllm.data.builtin import load_builtin  # owned by the data area; imported lazily

    ds = load_builtin(spec.builtin_data, seed=0)
    out = []
    for i, rec in enumerate(ds):
        out.append(canonical(spec, f"builtin:{spec.builtin_data} row {i}", dict(rec), i))
        if limit is not None and len(out) >= limit:
            break
    return out
