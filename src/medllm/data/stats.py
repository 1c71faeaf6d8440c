"""Dataset analysis: token lengths of prompts and responses (table + PNG histograms),
turns per dialogue, per-source counts and total tokens for a given tokenizer."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from medllm.data.formats import prompt_response, sample_text
from medllm.progress import progress


def _summary(values: list[int]) -> dict:
    if not values:
        return {"count": 0}
    import numpy as np

    a = np.asarray(values)
    return {"count": int(a.size), "mean": round(float(a.mean()), 1), "min": int(a.min()),
            "p50": int(np.percentile(a, 50)), "p90": int(np.percentile(a, 90)),
            "p99": int(np.percentile(a, 99)), "max": int(a.max()), "sum": int(a.sum())}


def dataset_stats(ds, tokenizer: Any = None, *, out_dir: str | Path | None = None, name: str = "data",
                  batch_size: int = 1000) -> dict:
    """Statistics of a canonical dataset; with ``out_dir`` also ``<name>_lengths.png`` and ``<name>_stats.json``."""
    from medllm.io import atomic_write_json

    def n_tokens(texts: list[str]) -> list[int]:
        if tokenizer is None:
            return [len(t.split()) for t in texts]
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    prompts, responses, totals, turns = [], [], [], []
    sources: Counter[str] = Counter()
    n = len(ds)
    for start in progress(range(0, n, batch_size), desc="stats", total=(n + batch_size - 1) // batch_size):
        rows = list(ds.select(range(start, min(start + batch_size, n))))
        pr = [prompt_response(r) for r in rows]
        prompts += n_tokens([p for p, _ in pr])
        responses += n_tokens([r for _, r in pr])
        totals += n_tokens([sample_text(r) for r in rows])
        for r in rows:
            sources[r.get("source") or r.get("topic") or "-"] += 1
            if "messages" in r:
                turns.append(sum(m["role"] == "user" for m in r["messages"]))
    stats = {
        "name": name, "samples": n, "unit": "tokens" if tokenizer is not None else "words (no tokenizer given)",
        "tokenizer": getattr(tokenizer, "name_or_path", None),
        "total_tokens": int(sum(totals)), "prompt": _summary(prompts), "response": _summary(responses),
        "sample": _summary(totals), "per_source": dict(sources),
    }
    if turns:
        stats["turns_per_dialogue"] = {"summary": _summary(turns), "histogram": dict(sorted(Counter(turns).items()))}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stats["plot"] = str(_plot(prompts, responses, out_dir / f"{name}_lengths.png", stats["unit"]))
        atomic_write_json(out_dir / f"{name}_stats.json", stats)
    return stats


def _plot(prompts: list[int], responses: list[int], path: Path, unit: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, values, title in ((axes[0], prompts, "prompt"), (axes[1], responses, "response")):
        ax.hist(values or [0], bins=50, color="#3b7dd8")
        ax.set_title(f"{title} length")
        ax.set_xlabel(unit)
        ax.set_ylabel("samples")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def data_summary(datasets: dict, tokenizer: Any, out_dir: str | Path, *, manifest: dict | None = None,
                 max_rows: int = 20000, seed: int = 0) -> dict:
    """The data step's ``summary.json``: per dataset, length statistics (and ``<name>_lengths.png``)
    measured on every row, or on a seeded sample of ``max_rows`` rows of a larger set (stated,
    with the total scaled up and marked as an estimate); plus the load / clean counts."""
    from medllm.io import atomic_write_json

    out_dir = Path(out_dir)
    summary: dict[str, Any] = {"unit": "tokens" if tokenizer is not None else "words (no tokenizer)",
                               "tokenizer": getattr(tokenizer, "name_or_path", None), "datasets": {}}
    for name, ds in datasets.items():
        n = len(ds)
        part = ds.shuffle(seed=seed).select(range(max_rows)) if n > max_rows else ds
        stats = dataset_stats(part, tokenizer, out_dir=out_dir, name=name)
        if n > max_rows:
            stats.update(samples=n, measured_on=max_rows,
                         total_tokens_estimated=int(stats["total_tokens"] * n / max_rows))
        summary["datasets"][name] = stats
    if manifest:
        summary["sources"] = {k: {f: v.get(f) for f in ("path", "kind", "loaded", "rejected", "after_clean")}
                              for k, v in (manifest.get("sources") or {}).items()}
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
