"""Cleaning: exact dedup, MinHash-LSH near-dedup, length/repetition/language filters and
benchmark decontamination (n-gram overlap, 13-grams by default as in GPT-3 / lm-eval).
Every removal is counted per rule with examples, so nothing disappears unexplained."""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from medllm.data.formats import sample_text
from medllm.progress import progress

_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_EN_STOP = {"the", "and", "of", "to", "a", "in", "is", "for", "with", "that", "on", "are", "be", "or", "it",
            "as", "this", "by", "an", "at", "from", "your", "you", "can", "if", "not", "was", "have", "what"}
EXAMPLES_PER_RULE = 3


def normalise(text: str) -> str:
    """Case, accents, punctuation and whitespace do not make a sample new."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_WORD.findall(text))


def repetition_ratio(text: str) -> float:
    """Share of word 3-grams that repeat an earlier one (0 = no repetition, ->1 = a loop)."""
    words = normalise(text).split()
    grams = list(zip(words, words[1:], words[2:]))
    if len(grams) < 10:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def guess_language(text: str) -> str:
    """A deliberately simple script/stopword heuristic: 'zh' for mostly-CJK text, 'en' when English
    function words are common, else 'other'. Enough to keep an English mixture English."""
    letters = sum(ch.isalpha() for ch in text) or 1
    if len(_CJK.findall(text)) / letters > 0.3:
        return "zh"
    words = normalise(text).split()
    if words and sum(w in _EN_STOP for w in words) / len(words) >= 0.08:
        return "en"
    return "en" if len(words) < 8 and text.isascii() else "other"


# ------------------------------------------------------------------ decontamination
class NgramIndex:
    """n-grams of evaluation items; items shorter than n words are matched whole."""

    def __init__(self, n: int = 13):
        self.n = n
        self.grams: set[int] = set()
        self.short: dict[int, set[int]] = {}
        self.items = 0

    @staticmethod
    def _h(words: list[str]) -> int:
        # in-process tuple hash: index and lookups live in the same process, and it is ~5x faster than blake2b
        return hash(tuple(words))

    def add(self, text: str, min_words: int = 8) -> None:
        words = normalise(text).split()
        if len(words) < min_words:
            return  # "yes", "B", short options: matching these would flag everything
        self.items += 1
        if len(words) < self.n:
            self.short.setdefault(len(words), set()).add(self._h(words))
            return
        for i in range(len(words) - self.n + 1):
            self.grams.add(self._h(words[i:i + self.n]))

    def hit(self, text: str) -> bool:
        words = normalise(text).split()
        for i in range(len(words) - self.n + 1):
            if self._h(words[i:i + self.n]) in self.grams:
                return True
        for k, hashes in self.short.items():
            for i in range(len(words) - k + 1):
                if self._h(words[i:i + k]) in hashes:
                    return True
        return False


def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def build_decontam_index(paths: list[str], n: int = 13) -> NgramIndex:
    """Index every text field of every record in the evaluation files (any layout: the
    benchmark need not be a format we train on, e.g. PubMedQA's QUESTION/CONTEXTS)."""
    from medllm.data.readers import list_data_files, read_rows

    index = NgramIndex(n)
    for p in paths:
        if p.startswith("builtin:"):
            from medllm.data.builtin import builtin_records

            for rec in builtin_records(p):
                for s in _strings({k: v for k, v in rec.items() if k not in ("id", "topic", "source")}):
                    index.add(s)
            continue
        for f in list_data_files(Path(p).expanduser()):
            for row in read_rows(f):
                for s in _strings(row.record):
                    index.add(s)
    return index


# ------------------------------------------------------------------ near-dedup
NEAR_DEDUP_CHARS = 4000  # long documents are compared on their first 4000 normalised characters


def _shingles(text: str, k: int = 5) -> set[bytes]:
    norm = normalise(text)[:NEAR_DEDUP_CHARS]
    if len(norm) <= k:
        return {norm.encode()}
    return {norm[i:i + k].encode() for i in range(len(norm) - k + 1)}


class NearDuplicateFinder:
    """MinHash over character 5-gram shingles + LSH (datasketch); first occurrence wins.
    The LSH bands are tuned for recall (few missed duplicates) and every candidate is then verified
    against the threshold with the stored signatures (so recall-tuning adds no false removals)."""

    def __init__(self, threshold: float = 0.85, num_perm: int = 128, seed: int = 1):
        import zlib

        from datasketch import MinHashLSH

        self.hashfunc = zlib.crc32  # C speed; datasketch's default sha1 per shingle dominated the runtime
        self.threshold = threshold
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.1, 0.9))
        self.num_perm, self.seed = num_perm, seed
        self.signatures: list = []  # uint32 arrays, 4 bytes x num_perm per kept document

    def seen(self, texts: list[str]) -> list[str | None]:
        """For each text (in order): the key of an earlier near-duplicate, or None (then it is indexed)."""
        from datasketch import LeanMinHash, MinHash

        hashes = MinHash.bulk([list(_shingles(t)) for t in texts], num_perm=self.num_perm, seed=self.seed,
                              hashfunc=self.hashfunc)
        out = []
        for mh in hashes:
            lean = LeanMinHash(mh)
            sig = lean.hashvalues
            match = next((k for k in self.lsh.query(lean)
                          if (self.signatures[int(k)] == sig).mean() >= self.threshold), None)
            if match is not None:
                out.append(match)
                continue
            key = str(len(self.signatures))
            self.signatures.append(sig)
            self.lsh.insert(key, lean)
            out.append(None)
        return out


# ------------------------------------------------------------------ driver
def clean_dataset(ds, cfg, *, decontam: NgramIndex | None = None, batch_size: int = 2000):
    """Apply ``cfg`` (medllm.config.data.CleanConfig) to a canonical dataset.
    Returns ``(clean_dataset, report)``; the report counts removals per rule with examples."""
    removed: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    keep: list[int] = []
    seen_exact: set[bytes] = set()
    near = NearDuplicateFinder(cfg.near_dedup_threshold) if cfg.near_dedup else None

    def drop(rule: str, text: str) -> None:
        removed[rule] += 1
        ex = examples.setdefault(rule, [])
        if len(ex) < EXAMPLES_PER_RULE:
            ex.append(text[:200])

    n = len(ds)
    for start in progress(range(0, n, batch_size), desc="clean", total=(n + batch_size - 1) // batch_size):
        batch = ds.select(range(start, min(start + batch_size, n)))
        texts = [sample_text(r) for r in batch]
        survivors = []
        for i, text in enumerate(texts):
            idx = start + i
            if len(text.strip()) < cfg.min_chars:
                drop("too_short", text)
            elif cfg.max_chars and len(text) > cfg.max_chars:
                drop("too_long", text)
            elif repetition_ratio(text) > cfg.max_repetition:
                drop("repetitive", text)
            elif cfg.language and guess_language(text) != cfg.language:
                drop(f"language_not_{cfg.language}", text)
            elif decontam is not None and decontam.hit(text):
                drop("benchmark_overlap", text)
            else:
                key = hashlib.blake2b(normalise(text).encode(), digest_size=16).digest()
                if cfg.exact_dedup and key in seen_exact:
                    drop("exact_duplicate", text)
                    continue
                seen_exact.add(key)
                survivors.append((idx, text))
        if near is not None and survivors:
            for (idx, text), dup in zip(survivors, near.seen([t for _, t in survivors])):
                if dup is None:
                    keep.append(idx)
                else:
                    drop("near_duplicate", text)
        else:
            keep += [idx for idx, _ in survivors]
    report = {"input": n, "kept": len(keep), "removed": dict(removed), "removed_total": sum(removed.values()),
              "examples": examples,
              "settings": cfg.model_dump() if hasattr(cfg, "model_dump") else dict(cfg)}
    if decontam is not None:
        report["decontamination"] = {"ngram": decontam.n, "eval_items_indexed": decontam.items}
    return ds.select(keep), report
