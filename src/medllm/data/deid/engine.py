"""``Deidentifier``: find identifiers (presidio recognizers) and replace them (presidio-anonymizer
custom operators) with consistent surrogates or masks, returning a span-level audit."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medllm.data.deid.recognizers import ENTITIES, build_recognizers
from medllm.data.deid.statistical import propagate_names
from medllm.data.deid.surrogates import SurrogateMaker


@dataclass
class Span:
    start: int
    end: int
    entity: str
    score: float


def resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Keep the longest (then highest-scoring) span wherever spans overlap."""
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (-(s.end - s.start), -s.score, s.start)):
        if all(s.end <= o.start or s.start >= o.end for o in out):
            out.append(s)
    return sorted(out, key=lambda s: s.start)


class Deidentifier:
    def __init__(self, *, mode: str = "surrogate", date_shift: bool = True, keep_originals: bool = False,
                 ner_model: str | None = None, entities: tuple[str, ...] = ENTITIES, keep_facilities: bool = False):
        from presidio_anonymizer import AnonymizerEngine

        self.recognizers = build_recognizers(ner_model)
        for r in self.recognizers:
            if r.name == "local_ner":
                r.load()
        # hospital/clinic names are removed unless asked: i2b2 counts HOSPITAL as PHI, and a small
        # clinic's name is a "geographic subdivision smaller than a state" in all but name
        self.entities = list(entities) + ([] if keep_facilities or "FACILITY" in entities else ["FACILITY"])
        self.mode, self.date_shift, self.keep_originals = mode, date_shift, keep_originals
        self.anonymizer = AnonymizerEngine()

    def analyze(self, text: str) -> list[Span]:
        spans = []
        for rec in self.recognizers:
            for r in rec.analyze(text, self.entities, None) or []:
                if r.entity_type in self.entities and r.end > r.start:
                    spans.append(Span(r.start, r.end, r.entity_type, r.score))
        spans = resolve_overlaps(spans)
        if "NAME" in self.entities:   # a name found once is removed everywhere in the document
            spans = resolve_overlaps(spans + [Span(r.start, r.end, "NAME", r.score)
                                              for r in propagate_names(text, spans)])
        return spans

    def deidentify(self, text: str, doc_key: str = "0") -> tuple[str, list[dict]]:
        """(new text, audit) — audit spans are positions in the new text, originals only if asked."""
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        spans = self.analyze(text)
        if not spans:
            return text, []
        maker = SurrogateMaker(doc_key, mode=self.mode, date_shift=self.date_shift)
        operators = {e: OperatorConfig("custom", {"lambda": (lambda ent: lambda orig: maker(ent, orig))(e)})
                     for e in {s.entity for s in spans}}
        results = [RecognizerResult(s.entity, s.start, s.end, s.score) for s in spans]
        out = self.anonymizer.anonymize(text, results, operators=operators, merge_entities_with_spaces=False)
        originals = {(s.entity, maker(s.entity, text[s.start:s.end])): text[s.start:s.end] for s in spans}
        audit = []
        for item in sorted(out.items, key=lambda i: i.start):
            entry: dict[str, Any] = {"doc": doc_key, "start": item.start, "end": item.end, "entity": item.entity_type,
                                     "action": "mask" if self.mode == "mask" else "surrogate"}
            if self.keep_originals:
                entry["original"] = originals.get((item.entity_type, item.text))
            audit.append(entry)
        return out.text, audit


FIELD_SEP = "\n\n\u2063\u00b6\u2063\n\n"  # joins a record's fields; nothing a recognizer matches across


def deidentify_dataset(ds, cfg, *, doc_key_column: str | None = None):
    """De-identify every text field of a canonical dataset (text, message contents, prompt/chosen/rejected).
    ``cfg`` is medllm.config.data.DeidConfig. Returns ``(dataset, audit rows, counts per entity)``."""
    from collections import Counter

    deid = Deidentifier(mode=cfg.mode, date_shift=cfg.date_shift, keep_originals=cfg.keep_originals_in_audit,
                        ner_model=cfg.ner_model, keep_facilities=getattr(cfg, "keep_facilities", False))
    audit: list[dict] = []
    counts: Counter[str] = Counter()

    def one(row: dict, idx: int) -> dict:
        """All text fields of a record are de-identified as one document, so a name found in one
        turn ("I am John Smith") is also removed where it appears alone in another ("Thanks John")."""
        key = str(row.get(doc_key_column)) if doc_key_column and row.get(doc_key_column) else str(idx)
        fields: list[tuple[str, int | None]] = []
        texts: list[str] = []
        if "text" in row:
            fields.append(("text", None))
            texts.append(row["text"])
        for col in ("messages", "prompt", "chosen", "rejected"):
            for j, m in enumerate(row.get(col) or []):
                fields.append((col, j))
                texts.append(m["content"])
        new_text, spans = deid.deidentify(FIELD_SEP.join(texts), key)
        pieces = new_text.split(FIELD_SEP)
        if len(pieces) != len(texts):  # a replacement swallowed a separator: fall back to field by field
            pieces, spans = [], []
            for t in texts:
                piece, sp = deid.deidentify(t, key)
                pieces.append(piece)
                spans += sp
        starts = [0]
        for piece in pieces[:-1]:
            starts.append(starts[-1] + len(piece) + len(FIELD_SEP))
        for sp in spans:
            counts[sp["entity"]] += 1
            f = max(i for i, st in enumerate(starts) if st <= sp["start"]) if len(pieces) == len(texts) else 0
            col, j = fields[f] if fields else ("text", None)
            audit.append(dict(sp, start=sp["start"] - starts[f], end=sp["end"] - starts[f], field=col,
                              **({"turn": j} if j is not None else {})))
        out = {}
        for (col, j), piece in zip(fields, pieces):
            if j is None:
                out[col] = piece
            else:
                out.setdefault(col, [dict(m) for m in row[col]])[j]["content"] = piece
        return out

    rows = [one(r, i) for i, r in enumerate(ds)]
    new = ds
    for col in rows[0] if rows else []:
        new = new.remove_columns(col).add_column(col, [r[col] for r in rows], feature=ds.features[col])
    return new.select_columns(ds.column_names), audit, dict(counts)
