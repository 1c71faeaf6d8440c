"""Weighted mixtures (e.g. Me-LLaMA's biomedical:clinical:general = 15:1:4) by tokens or samples,
seeded, with a manifest: source hashes, what was available, what was taken, and the ratio achieved."""
from __future__ import annotations

import random
from typing import Any

from medllm.data.formats import sample_text


class MixError(ValueError):
    pass


def token_counter(tokenizer: Any = None):
    """Tokens of a canonical record: with the model's tokenizer, else a chars/4 estimate (stated in the manifest)."""
    if tokenizer is None:
        return lambda rec: max(1, len(sample_text(rec)) // 4)
    return lambda rec: len(tokenizer(sample_text(rec), add_special_tokens=False)["input_ids"])


def mix_datasets(datasets: dict[str, Any], weights: dict[str, float], *, by: str = "tokens",
                 total: int | None = None, seed: int = 0, tokenizer: Any = None,
                 groups: dict[str, str | None] | None = None, files: dict[str, list[str]] | None = None):
    """``weights`` name sources or groups (``groups``: source -> group). Returns ``(dataset, manifest)``.
    Without ``total`` the mixture is as large as the scarcest member allows (no repetition);
    with a larger ``total`` members are repeated and the manifest says how often."""
    from datasets import concatenate_datasets

    from medllm.io import sha256_file

    groups = groups or {}
    members: dict[str, list[str]] = {}
    for key in weights:
        names = [key] if key in datasets else [s for s, g in groups.items() if g == key and s in datasets]
        if not names:
            raise MixError(f"mixture weight '{key}' matches no loaded source or group")
        members[key] = names
    kinds = {tuple(sorted(datasets[n].column_names)) for names in members.values() for n in names}
    if len(kinds) > 1:
        raise MixError(f"cannot mix different record kinds (columns {sorted(kinds)})")
    count = token_counter(tokenizer) if by == "tokens" else (lambda rec: 1)
    rng = random.Random(seed)
    pools: dict[str, list[tuple[str, int, int]]] = {}
    for key, names in members.items():
        pool = [(n, i, count(r)) for n in names for i, r in enumerate(datasets[n])]
        if not pool:
            raise MixError(f"'{key}' has no samples to mix")
        rng.shuffle(pool)
        pools[key] = pool
    wsum = sum(weights.values())
    share = {k: w / wsum for k, w in weights.items()}
    avail = {k: sum(c for *_, c in p) for k, p in pools.items()}
    grand = total or min(avail[k] / share[k] for k in pools)
    taken: dict[str, list[tuple[str, int, int]]] = {}
    repeats: dict[str, int] = {}
    for key, pool in pools.items():
        target, got, picked, passes = grand * share[key], 0, [], 0
        while got < target:
            passes += 1
            for item in pool:
                # take a sample when it brings the running total closer to the target
                if abs(got + item[2] - target) > abs(got - target):
                    break
                picked.append(item)
                got += item[2]
            else:
                continue
            break
        taken[key], repeats[key] = picked, passes
    got = {k: sum(c for *_, c in v) for k, v in taken.items()}
    gsum = sum(got.values()) or 1
    parts = [datasets[n].select([i for m, i, _ in v if m == n]) for v in taken.values()
             for n in dict.fromkeys(m for m, _, _ in v)]
    mixed = concatenate_datasets(parts).shuffle(seed=seed).flatten_indices()
    achieved = {k: got[k] / gsum for k in got}
    manifest = {
        "by": by, "seed": seed, "unit": "samples" if by == "samples" else
        ("tokens" if tokenizer is not None else "tokens (estimated as characters/4; no tokenizer given)"),
        "weights": weights, "target_ratio": share, "achieved_ratio": achieved,
        "max_ratio_error": max(abs(achieved[k] - share[k]) for k in share),
        "total": gsum, "samples": len(mixed),
        "members": {k: {"sources": members[k], "available": avail[k], "taken": got[k],
                        "samples_taken": len(taken[k]), "passes": repeats[k]} for k in members},
        "source_sha256": {n: {f: sha256_file(f) for f in fs} for n, fs in (files or {}).items()},
    }
    return mixed, manifest
