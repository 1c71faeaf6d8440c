"""The Data page: what a file is before it is used — detected format and kind, every problem
with its line, the first records, length histograms, and a de-identification preview
(original and de-identified text with the spans found)."""
from __future__ import annotations

import threading
from pathlib import Path

PREVIEW_RECORDS = 5
SCAN_LIMIT = 20_000        # records read for counts and histograms (a huge file is sampled from its start)
PROBLEM_LIMIT = 200


def histogram(values: list[int], bins: int = 20) -> dict:
    if not values:
        return {"edges": [], "counts": []}
    lo, hi = min(values), max(values)
    width = max(1, -(-(hi - lo + 1) // bins))
    edges = [lo + i * width for i in range(bins + 1)]
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, (v - lo) // width)] += 1
    while counts and counts[-1] == 0:
        counts.pop()
        edges.pop()
    return {"edges": edges, "counts": counts}


def inspect_file(path: str, *, kind: str = "auto", fmt: str = "auto") -> dict:
    """Never raises for a bad file: problems come back as data (``file:line: reason``)."""
    from medllm.data.formats import prompt_response, sample_text
    from medllm.data.loader import iter_records

    out: dict = {"path": path, "kind": None, "formats": {}, "records": 0, "problems": [], "preview": [],
                 "lengths": {}, "unit": "words", "truncated": False}
    try:
        if path.startswith("builtin:"):
            from medllm.data import load_source

            loaded = load_source(path)
            records = iter(loaded.dataset)
            reader = None
            out["kind"], out["formats"] = loaded.kind, loaded.formats
        else:
            if not Path(path).exists():
                out["problems"].append({"file": path, "line": 0, "message": "file not found"})
                return out
            reader, records = iter_records(path, kind=kind, format=fmt)
        prompts, responses, samples, texts = [], [], [], []
        for rec in records:
            out["records"] += 1
            if len(out["preview"]) < PREVIEW_RECORDS:
                out["preview"].append(rec)
            p, r = prompt_response(rec)
            prompts.append(len(p.split()))
            responses.append(len(r.split()))
            text = sample_text(rec)
            samples.append(len(text.split()))
            if len(texts) < PREVIEW_RECORDS:
                texts.append(text)
            if out["records"] >= SCAN_LIMIT:
                out["truncated"] = True
                break
        if reader is not None:
            out["kind"], out["formats"] = reader.kind, dict(reader.formats)
            out["problems"] = [p.to_dict() for p in reader.problems[:PROBLEM_LIMIT]]
            out["problem_count"] = len(reader.problems)
        out["lengths"] = {"prompt": histogram(prompts), "response": histogram(responses),
                          "sample": histogram(samples)}
        out["sample_texts"] = texts
    except (OSError, ValueError) as exc:    # unreadable file, unknown format/kind, DataError
        out["problems"].append({"file": path, "line": 0, "message": str(exc)})
    return out


_deid = None
_deid_lock = threading.Lock()


def deidentifier():
    global _deid
    with _deid_lock:
        if _deid is None:
            from medllm.data.deid.engine import Deidentifier

            _deid = Deidentifier(mode="surrogate", date_shift=True)
        return _deid


def deid_preview(texts: list[str]) -> list[dict]:
    """Per text: original with its spans, de-identified with the replaced spans."""
    d = deidentifier()
    out = []
    for i, text in enumerate(texts):
        found = d.analyze(text)
        new, audit = d.deidentify(text, doc_key=str(i))
        out.append({"original": text, "original_spans": [{"start": s.start, "end": s.end, "entity": s.entity}
                                                         for s in found],
                    "deidentified": new, "deidentified_spans": [{"start": a["start"], "end": a["end"],
                                                                 "entity": a["entity"]} for a in audit]})
    return out
