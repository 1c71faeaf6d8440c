"""Hand-written gold notes for ``medllm data deid-eval --gold``.

Two file forms, both giving ``{"id", "genre", "split", "text", "spans": [{start, end, entity}],
"keep": [{start, end, term}]}`` per note:

* ``.txt`` markup (how the bundled set is written): a ``### id | genre | split`` header starts a note
  (split: ``dev`` tuned on, ``heldout`` scored after tuning, ``fresh``, ``fresh2`` … ``fresh7`` written later, each
  scored blind once before any round used it);
  ``[[TYPE:text]]`` marks an identifier, ``{{text}}`` a clinical term that must survive; ``#`` lines
  before the first header are comments.
* ``.jsonl``: one note per line in the form above (``keep`` optional).

The markup loader refuses an annotation slip it can see: a marked name or identifier that also
occurs unmarked elsewhere in the same note (every occurrence must be annotated)."""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from medllm.data.deid.recognizers import ENTITIES

MARK = re.compile(r"\[\[([A-Z_]+):(.+?)\]\]|\{\{(.+?)\}\}")
HEADER = re.compile(r"^###\s*([\w.-]+)\s*\|\s*([^|]+?)\s*\|\s*(dev|heldout|fresh\d*)\s*$")
GOLD_ENTITIES = (*ENTITIES, "FACILITY")


class GoldError(ValueError):
    pass


def bundled_gold() -> list[Path]:
    folder = resources.files("medllm.data.deid") / "gold"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".txt"))


def load_gold(paths: list[Path] | Path | None = None, split: str | None = None) -> list[dict]:
    """Notes from ``paths`` (default: the bundled set), optionally only one split. An annotation problem in a note
    of another split (a split still being written) does not stop the others from loading."""
    paths = bundled_gold() if paths is None else [paths] if isinstance(paths, (str, Path)) else paths
    notes: list[dict] = []
    problems: list = []
    for p in map(Path, paths):
        if not p.is_file():
            raise GoldError(f"{p}: gold file not found")
        notes += _load_jsonl(p, problems) if p.suffix == ".jsonl" else _load_markup(p, problems)
    # a problem is (split or None, message); None (a malformed header or line) always counts
    problems = [msg for sp, msg in problems if sp is None or split in (None, "all") or sp == split]
    if problems:
        raise GoldError("gold set has problems:\n  " + "\n  ".join(problems))
    return [n for n in notes if split in (None, "all") or n["split"] == split]


def _load_markup(path: Path, problems: list) -> list[dict]:
    notes, current, body, start_line = [], None, [], 0
    lines = path.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines + ["### <end> | x | dev"], 1):
        m = HEADER.match(line)
        if m or lineno == len(lines) + 1:
            if current is not None:
                notes.append(_parse_note(current, "\n".join(body).strip("\n"), f"{path}:{start_line}", problems))
            current, body, start_line = (m.groups() if m else None), [], lineno
        elif line.startswith("###"):
            problems.append((None, f"{path}:{lineno}: header must read '### id | genre | dev|heldout|freshN'"))
        elif current is not None:
            body.append(line)
    return notes


def _parse_note(header, marked: str, where: str, problems: list) -> dict:
    nid, genre, split = header
    text, spans, keep, pos = [], [], [], 0
    for m in MARK.finditer(marked):
        text.append(marked[pos:m.start()])
        at = sum(map(len, text))
        if m.group(1):
            entity, value = m.group(1), m.group(2)
            if entity not in GOLD_ENTITIES:
                problems.append((split, f"{where} ({nid}): unknown identifier type {entity!r}"))
            spans.append({"start": at, "end": at + len(value), "entity": entity})
        else:
            value = m.group(3)
            keep.append({"start": at, "end": at + len(value), "term": value})
        text.append(value)
        pos = m.end()
    text.append(marked[pos:])
    plain = "".join(text)
    for s in spans:   # every occurrence of an annotated value must itself be annotated
        value = plain[s["start"]:s["end"]]
        for o in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", plain):
            # inside a must-survive term it is deliberately not a name: "Dr. Wells" vs "Wells 2"
            if not any(g["start"] <= o.start() < g["end"] for g in spans + keep):
                problems.append((split, f"{where} ({nid}): {value!r} is annotated once but also occurs unannotated"))
                break
    return {"id": nid, "genre": genre, "split": split, "text": plain, "spans": spans, "keep": keep}


def _load_jsonl(path: Path, problems: list) -> list[dict]:
    notes = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            note = json.loads(line)
            text = note["text"]
            for s in note["spans"]:
                if not (0 <= s["start"] < s["end"] <= len(text)) or s["entity"] not in GOLD_ENTITIES:
                    raise ValueError(f"bad span {s}")
            note.setdefault("keep", [])
            note.setdefault("split", "dev")
            note.setdefault("id", f"{path.stem}-{lineno}")
            notes.append(note)
        except (ValueError, KeyError, TypeError) as exc:
            problems.append((None, f"{path}:{lineno}: {exc}"))
    return notes
