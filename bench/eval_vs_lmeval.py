"""medllm eval vs lm-evaluation-harness 0.4.x on the same model and the same local files.

    .venv/bin/python bench/eval_vs_lmeval.py [--sample N | --limit N] [--model smollm2-135m-instruct] [--skip-lmeval]

No --sample/--limit: the full sets (PubMedQA-500, the six MMLU medical subjects). --sample N: the
same seeded random N per task on both sides (lm-eval --samples); --limit N: first N (PubMedQA's
first items are all "yes", so that slice measures one class).

lm-eval lives in its own venv (.venv-bench, created here) that reuses the project's torch and
transformers through a .pth file, so our dependency set stays clean and no CUDA torch is pulled.
lm-eval's own pubmedqa/mmlu tasks download from the hub, so local task YAMLs (same prompts,
same choices as lm-eval's pubmedqa and mmlu default template) are written to bench/results/.
Runs back to back (lm-eval fp32, medllm bf16, medllm fp32) and records load averages.
Both sides load the model once. Writes bench/results/eval_vs_lmeval.json and a timestamped copy.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
import medllm  # noqa: E402,F401  (offline env)

DATA = Path(os.environ.get("MEDLLM_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCH_VENV = REPO / ".venv-bench"
LMEVAL = "lm-eval==0.4.13"
RESULTS = REPO / "bench" / "results"
SEED = 1234  # medllm evaluate()'s default seed: the same random slice on both sides
SUBJECTS = ["anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics",
            "professional_medicine"]

PUBMEDQA_YAML = """task: pubmedqa_local
dataset_path: json
dataset_kwargs:
  data_files: {{test: "{path}"}}
output_type: multiple_choice
test_split: test
doc_to_text: !function local_prompts.pubmedqa_text
doc_to_target: final_decision
doc_to_choice: ["yes", "no", "maybe"]
metric_list:
  - metric: acc
  - metric: acc_norm
"""
MMLU_YAML = """task: mmlu_local_{subject}
dataset_path: csv
dataset_kwargs:
  data_files: {{test: "{path}"}}
  column_names: [question, A, B, C, D, answer]
output_type: multiple_choice
test_split: test
description: "The following are multiple choice questions (with answers) about {subject_text}.\\n\\n"
doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{A}}}}\\nB. {{{{B}}}}\\nC. {{{{C}}}}\\nD. {{{{D}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: "{{{{['A', 'B', 'C', 'D'].index(answer.strip())}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""
PROMPTS_PY = '''def pubmedqa_text(doc):
    return "Abstract: {}\\nQuestion: {}\\nAnswer:".format("\\n".join(doc["CONTEXTS"]), doc["QUESTION"])
'''


def ensure_bench_venv() -> Path:
    py = BENCH_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        site = subprocess.run([str(py), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        import sysconfig

        Path(site, "medllm_base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    if subprocess.run([str(py), "-c", "import lm_eval"], capture_output=True).returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", LMEVAL], check=True)
    return BENCH_VENV / "bin" / "lm-eval"


def write_tasks() -> Path:
    d = RESULTS / "lmeval_tasks"
    d.mkdir(parents=True, exist_ok=True)
    (d / "local_prompts.py").write_text(PROMPTS_PY)
    (d / "pubmedqa_local.yaml").write_text(PUBMEDQA_YAML.format(path=DATA / "pubmedqa" / "pqal_test.jsonl"))
    for s in SUBJECTS:
        (d / f"mmlu_local_{s}.yaml").write_text(MMLU_YAML.format(
            subject=s, subject_text=s.replace("_", " "), path=DATA / "mmlu_med" / f"{s}_test.csv"))
    return d


def sample_indices(n_docs: int, k: int, seed: int = SEED) -> list[int]:
    """The indices medllm's ``sample="random"`` keeps (loaders.load_examples), for lm-eval --samples."""
    import random

    return sorted(random.Random(seed).sample(range(n_docs), min(k, n_docs)))


def task_files() -> dict[str, Path]:
    return {"pubmedqa_local": DATA / "pubmedqa" / "pqal_test.jsonl",
            **{f"mmlu_local_{s}": DATA / "mmlu_med" / f"{s}_test.csv" for s in SUBJECTS}}


def n_docs(task: str, path: Path) -> int:
    from medllm.eval.loaders import load_examples
    from medllm.eval.spec import load_spec

    return len(load_examples(load_spec("pubmedqa" if task.startswith("pubmedqa") else "mmlu_medical"), path))


def run_lmeval(exe: Path, model_dir: Path, limit: int | None, sample: int | None = None) -> dict:
    tasks_dir = write_tasks()
    out = RESULTS / "lmeval_out"
    tasks = ["pubmedqa_local"] + [f"mmlu_local_{s}" for s in SUBJECTS]
    cmd = [str(exe), "run", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
           "--tasks", *tasks, "--include_path", str(tasks_dir), "--batch_size", "1", "--device", "cpu",
           "--output_path", str(out)]
    if limit:
        cmd += ["--limit", str(limit)]
    if sample:
        cmd += ["--samples", json.dumps({t: sample_indices(n_docs(t, p), sample) for t, p in task_files().items()})]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    load0, t0 = os.getloadavg(), time.time()
    with open(RESULTS / "lmeval.log", "w") as log:
        subprocess.run(cmd, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.time() - t0
    newest = max(out.rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    res = json.loads(newest.read_text())
    per = {t: {"acc": res["results"][t]["acc,none"], "acc_norm": res["results"][t]["acc_norm,none"],
               "n": res["n-samples"][t]["effective"]} for t in tasks}
    mm = [per[f"mmlu_local_{s}"] for s in SUBJECTS]
    n_mm = sum(m["n"] for m in mm)
    return {"wall_s": round(wall, 1), "load_before": load0, "load_after": os.getloadavg(),
            "pubmedqa": per["pubmedqa_local"],
            "mmlu_medical": {"acc": sum(m["acc"] * m["n"] for m in mm) / n_mm,
                             "acc_norm": sum(m["acc_norm"] * m["n"] for m in mm) / n_mm, "n": n_mm},
            "results_file": str(newest)}


def run_medllm(model: str, dtype: str, limit: int | None, batch_size: int, sample: int | None = None) -> dict:
    """One backend (one model load) for every task, like lm-eval's single run; per-subject MMLU
    tasks when sliced, so the slice is per subject as in lm-eval."""
    import shutil

    from medllm.eval.runner import _BackendFactory, run_task
    from medllm.eval.spec import load_spec

    out = RESULTS / f"medllm_{dtype}"
    shutil.rmtree(out, ignore_errors=True)  # no cache reuse: we are timing
    k, how = (sample, "random") if sample else (limit, "first")
    pq_spec, mm_spec = load_spec("pubmedqa"), load_spec("mmlu_medical")
    load0, t0 = os.getloadavg(), time.time()
    factory = _BackendFactory(model, None, batch_size, dtype)
    kw = dict(max_new_tokens=8, seed=SEED, sample=how)
    pq = run_task(factory, pq_spec, "loglik", 0, DATA / "pubmedqa" / "pqal_test.jsonl", k, out / "pubmedqa", **kw)
    if k is None:
        per = [run_task(factory, mm_spec, "loglik", 0, DATA / "mmlu_med", None, out / "mmlu", **kw)]
    else:
        per = [run_task(factory, mm_spec, "loglik", 0, DATA / "mmlu_med" / f"{s}_test.csv", k, out / s, **kw)
               for s in SUBJECTS]
    wall = time.time() - t0
    n = sum(p["n"] for p in per)
    mm = {m: sum(p["metrics"][m]["value"] * p["n"] for p in per) / n for m in ("acc", "acc_norm")}
    return {"wall_s": round(wall, 1), "dtype": factory.backend.dtype, "load_before": load0,
            "load_after": os.getloadavg(),
            "pubmedqa": {"acc": pq["metrics"]["acc"]["value"], "acc_norm": pq["metrics"]["acc_norm"]["value"],
                         "n": pq["n"]},
            "mmlu_medical": {**mm, "n": n}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--limit", type=int, default=None, help="first N per task (lm-eval --limit semantics)")
    ap.add_argument("--sample", type=int, default=None, help=f"seeded (seed {SEED}) random N per task, both sides")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--skip-lmeval", action="store_true", help="reuse the lm-eval figures of the last run")
    args = ap.parse_args()
    from medllm.models import ensure_local
    from medllm.models.hardware import machine_info

    model_dir = ensure_local(args.model)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_file = RESULTS / "eval_vs_lmeval.json"
    if args.limit and args.sample:
        ap.error("--limit and --sample exclude each other")
    report = {"model": args.model, "limit": args.limit, "sample": args.sample, "seed": SEED,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadavg_start": os.getloadavg(),
              "machine": machine_info(), "lm_eval_version": LMEVAL}
    if args.skip_lmeval and out_file.is_file():
        report["lm_eval"] = json.loads(out_file.read_text())["lm_eval"]
    else:
        report["lm_eval"] = run_lmeval(ensure_bench_venv(), model_dir, args.limit, args.sample)
        from medllm.io import atomic_write_json

        atomic_write_json(out_file, report)  # keep the slow half even if the medllm half fails
    for dtype in ("bfloat16", "float32"):
        report[f"medllm_{dtype}"] = run_medllm(args.model, dtype, args.limit, args.batch_size, args.sample)
    lm = report["lm_eval"]
    for dtype in ("bfloat16", "float32"):
        me = report[f"medllm_{dtype}"]
        report[f"summary_{dtype}"] = {
            "wall_time_ratio_medllm_over_lmeval": round(me["wall_s"] / lm["wall_s"], 3),
            **{f"{task}_{m}_diff_pt": round(100 * (me[task][m] - lm[task][m]), 2)
               for task in ("pubmedqa", "mmlu_medical") for m in ("acc", "acc_norm")},
        }
    from medllm.io import atomic_write_json

    report["summary_bf16_vs_fp32_pt"] = {
        f"{task}_{m}": round(100 * (report["medllm_bfloat16"][task][m] - report["medllm_float32"][task][m]), 2)
        for task in ("pubmedqa", "mmlu_medical") for m in ("acc", "acc_norm")}
    report["loadavg_end"] = os.getloadavg()
    atomic_write_json(out_file, report)
    atomic_write_json(RESULTS / f"eval_vs_lmeval-{time.strftime('%Y%m%d-%H%M%S')}.json", report)
    print(json.dumps({k: v for k, v in report.items() if k.startswith(("summary", "lm_eval", "medllm"))}, indent=1))


if __name__ == "__main__":
    main()
