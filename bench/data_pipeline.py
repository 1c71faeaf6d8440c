"""Data-area figures: de-identification precision/recall on synthetic notes, near-dedup hashing
(our crc32 shingle hashing vs datasketch's default sha1, same data, interleaved), cleaning and
streaming-validation throughput, and a 15:1:4 token mixture's achieved ratio.

    .venv/bin/python bench/data_pipeline.py [--notes 500] [--lines 1000000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MEDLLM_QUIET", "1")

from runner import peak_rss_mb, ratio, timed, write_result  # noqa: E402

SHARED = Path(os.environ.get("MEDLLM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def deid_figures(n: int) -> dict:
    from medllm.data.deid.engine import Deidentifier
    from medllm.data.deid.evaluate import evaluate_deid
    from medllm.data.deid.synth import synth_corpus

    notes = synth_corpus(n, seed=2026)
    t = time.perf_counter()
    rep = evaluate_deid(notes, Deidentifier())
    secs = time.perf_counter() - t
    return {"notes": n, "seconds": round(secs, 2), "notes_per_s": round(n / secs, 1), "overall": rep["overall"],
            "per_type": {k: {m: v[m] for m in ("gold", "recall", "precision")} for k, v in rep["per_type"].items()}}


def minhash_hashing(texts: list[str], repeats: int = 2) -> dict:
    """Same shingles, same num_perm: only the per-shingle hash function differs."""
    import zlib

    from datasketch import MinHash

    from medllm.data.clean import _shingles

    shingles = [list(_shingles(t)) for t in texts]
    times = {"crc32": 0.0, "sha1_default": 0.0}
    for _ in range(repeats):  # interleaved so background load hits both sides alike
        for name, kw in (("crc32", {"hashfunc": zlib.crc32}), ("sha1_default", {})):
            t = time.perf_counter()
            MinHash.bulk(shingles, num_perm=128, seed=1, **kw)
            times[name] += time.perf_counter() - t
    return {"docs": len(texts), "seconds": {k: round(v, 3) for k, v in times.items()},
            "speedup_crc32_over_sha1": ratio(times["sha1_default"], times["crc32"])}


def clean_figures(path: Path) -> dict:
    from medllm.config.data import CleanConfig
    from medllm.data import load_source
    from medllm.data.clean import build_decontam_index, clean_dataset

    out: dict = {}
    with timed(out, "load"):
        ds = load_source(path).dataset
    with timed(out, "decontam_index"):
        index = build_decontam_index([str(SHARED / "mmlu_med"), str(SHARED / "pubmedqa" / "pqal_test.jsonl")])
    with timed(out, "clean"):
        _, report = clean_dataset(ds, CleanConfig(), decontam=index)
    out["rows"] = len(ds)
    out["rows_per_s"] = round(len(ds) / out["clean"]["seconds"], 1)
    out["removed"] = report["removed"]
    return out, ds


def streaming_figures(lines: int, tmp: Path) -> dict:
    from medllm.data.loader import iter_records

    path = tmp / "stream.jsonl"
    with open(path, "w") as fh:
        for i in range(lines):
            fh.write('{"text": "line %d of a long corpus with some words in it"}\n' % i)
    base = peak_rss_mb()
    t = time.perf_counter()
    reader, records = iter_records(path)
    n = sum(1 for _ in records)
    secs = time.perf_counter() - t
    path.unlink()
    return {"lines": n, "seconds": round(secs, 2), "lines_per_s": round(n / secs),
            "peak_rss_growth_mb": round(peak_rss_mb() - base, 1), "problems": len(reader.problems)}


def mix_figures() -> dict:
    from medllm.data import load_source
    from medllm.data.mix import mix_datasets
    from medllm.models import load_tokenizer

    tok = load_tokenizer("tiny-llama")  # SmolLM2 tokenizer
    sources = {"biomedical": load_source(SHARED / "instruct" / "medalpaca").dataset,
               "clinical": load_source(SHARED / "instruct" / "chatdoctor").dataset,
               "general": load_source("builtin:demo/sft").dataset}
    t = time.perf_counter()
    _, m = mix_datasets(sources, {"biomedical": 15, "clinical": 1, "general": 4}, by="tokens", seed=0, tokenizer=tok)
    return {"seconds": round(time.perf_counter() - t, 2), "target": m["target_ratio"], "achieved": m["achieved_ratio"],
            "max_ratio_error": m["max_ratio_error"], "total_tokens": m["total"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notes", type=int, default=500)
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args()
    import tempfile

    import medllm  # noqa: F401

    result: dict = {"deid": deid_figures(args.notes)}
    if SHARED.is_dir():
        result["clean_medalpaca"], ds = clean_figures(SHARED / "instruct" / "medalpaca")
        from medllm.data.formats import sample_text

        result["minhash_hashing"] = minhash_hashing([sample_text(r) for r in ds])
        result["mix_15_1_4"] = mix_figures()
    else:
        result["note"] = f"shared data not found at {SHARED}: clean/minhash/mix figures skipped"
    with tempfile.TemporaryDirectory() as tmp:
        result["streaming_check"] = streaming_figures(args.lines, Path(tmp))
    write_result("data_pipeline", result)


if __name__ == "__main__":
    main()
