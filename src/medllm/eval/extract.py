"""Answer extraction from free text, robust to chatty models.

Rules avoid "first substring wins": labels match only as whole words ("no" never matches
inside "not" or "know"), an explicit "answer is X" beats a mention, and an output that names
several different options without committing to one counts as unanswered (None), not as
whichever option happened to appear first.
"""
from __future__ import annotations

import re

from medllm.eval.loaders import LETTERS

_ANSWER_CUE = r"(?:final answer|correct answer|the answer|answer|option|choice)\s*(?:is|would be|:)?\s*(?:option\s*)?"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def extract_letter(output: str, choices: list[str]) -> int | None:
    """Index of the option a generated MCQ answer commits to, or None."""
    n = len(choices)
    valid = LETTERS[:n]
    text = output.strip()
    if not text:
        return None
    cls = f"[{valid}]"
    # 1. the whole answer is a letter: "B", "(B)", "B.", "B) ..."
    # (a bare letter followed by a word, "A patient ..." or "A or B", is not a commitment)
    m = re.match(rf"^\(?({cls})(?:\)|[.:]|\s*$)", text)
    if m:
        return valid.index(m.group(1))
    # 2. an explicit cue: "The answer is (C)", "Answer: C"
    m = re.search(rf"{_ANSWER_CUE}\(?({cls})\)?(?![A-Za-z])", text, flags=re.IGNORECASE)
    if m and m.group(1).upper() in valid and m.group(1).isupper():
        return valid.index(m.group(1))
    # 3. the text of exactly one option appears (longest options first so "A and B" beats "A")
    low = _norm(text)
    hits = {i for i, c in enumerate(choices) if c and re.search(rf"(?<!\w){re.escape(_norm(c))}(?!\w)", low)}
    if len(hits) == 1:
        return hits.pop()
    # 4. exactly one distinct standalone capital letter in parentheses or before a period
    letters = set(re.findall(rf"(?<![A-Za-z])\(?({cls})[).](?!\w)", text))
    if len(letters) == 1:
        return valid.index(letters.pop())
    return None


def extract_label(output: str, labels: list[str]) -> str | None:
    """The label (from a closed set) a generated answer commits to, or None."""
    low = _norm(output)
    if not low:
        return None
    pats = {lab: re.compile(rf"(?<![\w-]){re.escape(_norm(lab))}(?![\w-])") for lab in labels}
    # 1. the answer starts with a label ("Yes, because ...")
    starts = [lab for lab, p in pats.items() if p.match(low.lstrip("*\"'( "))]
    if starts:
        return max(starts, key=len)
    # 2. explicit cue: "the answer is maybe"
    for lab, p in pats.items():
        if re.search(rf"{_ANSWER_CUE}[\"'*(]*{p.pattern}", low):
            return lab
    # 3. exactly one distinct label mentioned
    found = [lab for lab, p in pats.items() if p.search(low)]
    found = [lab for lab in found if not any(lab != o and _norm(lab) in _norm(o) for o in found)]
    return found[0] if len(found) == 1 else None


def extract_labels(output: str, labels: list[str]) -> list[str]:
    """Every label of a closed set named in a multi-label answer (whole words, any order)."""
    low = _norm(output)
    found = [lab for lab in labels if re.search(rf"(?<![\w-]){re.escape(_norm(lab))}(?![\w-])", low)]
    return sorted(set(found), key=labels.index)


def extract_ranked_list(output: str, k: int = 5) -> list[str]:
    """Items of a numbered or bulleted list, in order; a single line counts as one item."""
    items = []
    for line in output.splitlines():
        m = re.match(r"^\s*(?:\d+[.)]|[-*•])\s*(.+)$", line)
        if m:
            items.append(m.group(1).strip().rstrip("."))
    if not items and output.strip():
        items = [p.strip().rstrip(".") for p in re.split(r"[;\n]", output) if p.strip()]
    return items[:k]


# ----------------------------------------------------------------- NER
def bio_to_spans(tokens: list[str], tags: list[str]) -> list[tuple[str, str]]:
    spans, cur_type, cur = [], None, []
    for tok, tag in zip(tokens, tags):
        if tag.startswith("B-") or (tag.startswith("I-") and cur_type != tag[2:]):
            if cur:
                spans.append((cur_type, " ".join(cur)))
            cur_type, cur = tag[2:], [tok]
        elif tag.startswith("I-"):
            cur.append(tok)
        else:
            if cur:
                spans.append((cur_type, " ".join(cur)))
            cur_type, cur = None, []
    if cur:
        spans.append((cur_type, " ".join(cur)))
    return spans


def entities_to_bio(output: str, tokens: list[str], types: set[str] | None = None) -> list[str]:
    """Parse 'TYPE: text' lines and tag the first unclaimed occurrence of each text's tokens."""
    tags = ["O"] * len(tokens)
    lowtok = [t.lower() for t in tokens]
    for line in output.splitlines():
        if ":" not in line:
            continue
        etype, text = (s.strip() for s in line.split(":", 1))
        etype = re.sub(r"^[\s\d.)*-]+", "", etype).strip()
        if not etype or not text or (types and etype not in types):
            continue
        words = re.findall(r"\w+|[^\w\s]", text.lower())
        n = len(words)
        for s in range(len(tokens) - n + 1):
            if lowtok[s:s + n] == words and all(t == "O" for t in tags[s:s + n]):
                tags[s] = f"B-{etype}"
                for j in range(s + 1, s + n):
                    tags[j] = f"I-{etype}"
                break
    return tags
