"""Peak RSS of one training stage of a recipe, on its real data, for a bounded number of steps.

Runs the recipe's data step into a scratch run folder, then the named stage with
``max_steps`` capped, in a child process (its own peak), and prints the peak RSS next to
``medllm plan --cpu``'s estimate for the stage as it will run (after any automatic micro-batching).

    .venv/bin/python bench/recipe_peak_rss.py configs/supervised-pubmedqa.yaml --stage sft --steps 4 \
        [key=value overrides, e.g. stages.sft.batch_size=8 stages.sft.grad_accum=1]

Writes bench/results/recipe_peak_rss-<recipe>-<stage>.json (``--tag`` adds a suffix).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(recipe_path: str, overrides: list[str], stage_name: str, steps: int, tmp: str) -> dict:
    os.environ.setdefault("MEDLLM_QUIET", "1")
    import medllm  # noqa: F401  (offline guard before transformers)
    from medllm.config.loader import load_recipe
    from medllm.data.prepare import prepare_data
    from medllm.models import ensure_local
    from medllm.runs.folder import RunFolder
    from medllm.train import run_stage

    recipe = load_recipe(recipe_path, overrides)
    run = RunFolder.open(recipe, root=tmp)
    datasets = prepare_data(recipe, run)
    stage = recipe.stages[stage_name].model_copy(update={"max_steps": steps, "save_every": None,
                                                         "eval_every": None})
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    res = run_stage(stage_name, stage, recipe=recipe, run=run, base_model=ensure_local(recipe.model.name),
                    datasets=datasets, out_dir=Path(tmp) / stage_name)
    m = res.metrics
    gb = 1024 / 1e9   # ru_maxrss is in KiB on Linux; GB here are 10^9 bytes, as in `medllm plan`
    return {"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * gb,
            "rss_before_stage_gb": rss_before * gb, "seconds": round(time.perf_counter() - t0, 1),
            "tokens": m.get("tokens"), "tokens_per_s": m.get("tokens_per_s"), "train_loss": m.get("train_loss"),
            "micro_batch": m.get("micro_batch"), "grad_accum": m.get("grad_accum"),
            "plan_estimate_gb": m.get("plan_estimate_gb")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recipe")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--stage", default="sft")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--tag", default="")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        with tempfile.TemporaryDirectory(prefix="medllm-rss-") as tmp:
            out = child(a.recipe, a.overrides, a.stage, a.steps, tmp)
        Path(a.result).write_text(json.dumps(out))
        return
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        res = Path(tmp) / "r.json"
        subprocess.run([sys.executable, __file__, a.recipe, *a.overrides, "--stage", a.stage, "--steps",
                        str(a.steps), "--child", "--result", str(res)], check=True)
        out = json.loads(res.read_text())
    out.update(recipe=a.recipe, overrides=a.overrides, stage=a.stage, steps=a.steps, loadavg_before=load,
               loadavg_after=os.getloadavg(), cpu_count=os.cpu_count(), when=time.strftime("%Y-%m-%dT%H:%M:%S"))
    name = f"recipe_peak_rss-{Path(a.recipe).stem}-{a.stage}{'-' + a.tag if a.tag else ''}.json"
    dest = REPO / "bench" / "results" / name
    dest.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
