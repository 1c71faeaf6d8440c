"""Run folders as the studio shows them: plain JSON read from the files the pipeline writes
(state.json, stages/<stage>/log_history.jsonl and metrics.json, the data step's stats, eval
results, examples). Every reader tolerates a missing or half-written file: a run that is
still going, or one from an older medllm, shows what it has."""
from __future__ import annotations

import json
import time
from pathlib import Path

from medllm.train.observe import LOG_HISTORY, read_log_history

JOB_FILE = "studio_job.json"      # how the studio launched a run (argv, pid), for Stop and Resume
LOG_FILE = "pipeline.log"         # the launched process's stdout + stderr
STATUSES = ("queued", "running", "done", "failed", "interrupted", "incomplete", "new")


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and ((p / "state.json").is_file() or (p / JOB_FILE).is_file()))


def step_order(run: Path, state: dict) -> list[str]:
    """data, the recipe's stages, eval, examples, report (from the resolved recipe when readable)."""
    import yaml

    stages: list[str] = []
    try:
        recipe = yaml.safe_load((run / "recipe.yaml").read_text(encoding="utf-8")) or {}
        stages = list((recipe.get("stages") or {}).keys())
    except (OSError, yaml.YAMLError):
        stages = [s for s in state if s not in ("data", "eval", "examples", "report")]
    return ["data", *stages, "eval", "examples", "report"]


def pid_alive(pid: int | None) -> bool:
    import os

    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) is not running
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def run_status(stages: dict, order: list[str], job: dict | None) -> str:
    statuses = [v.get("status") for v in stages.values()]
    alive = pid_alive((job or {}).get("pid"))
    if "running" in statuses:
        # a step left "running" by a process that is gone (kill -9, power cut) was interrupted
        return "running" if alive or not job else "interrupted"
    if alive:
        return "running"
    for s in ("failed", "interrupted"):
        if s in statuses:
            return s
    if stages.get("report", {}).get("status") == "done":
        return "done"
    return "incomplete" if stages else "new"


def stage_progress(run: Path, stage: str) -> dict | None:
    """The last logged step of a training stage: step, max_steps, loss, tokens/s, ETA, peak RSS."""
    hist = read_log_history(run / "stages" / stage / LOG_HISTORY)
    if not hist:
        return None
    last = hist[-1]
    losses = [h for h in hist if "loss" in h]
    out = {k: last.get(k) for k in ("step", "max_steps", "eta_s", "tokens_per_s", "peak_rss_mb", "epoch")}
    out["loss"] = losses[-1]["loss"] if losses else None
    return out


def curves(run: Path, stage: str) -> dict:
    """Train and validation loss points of a stage, live from log_history.jsonl (else metrics.json)."""
    hist = read_log_history(run / "stages" / stage / LOG_HISTORY)
    if hist:
        return {"train": [[h["step"], h["loss"]] for h in hist if "loss" in h],
                "eval": [[h["step"], h["eval_loss"]] for h in hist if "eval_loss" in h],
                "tokens_per_s": [[h["step"], h["tokens_per_s"]] for h in hist if "tokens_per_s" in h]}
    m = read_json(run / "stages" / stage / "metrics.json") or {}
    return {"train": m.get("loss_history") or [], "eval": m.get("eval_history") or [], "tokens_per_s": []}


def eval_rows(run: Path, stages: dict) -> list[dict]:
    """One row per (model label, task, metric) with its CI, from each eval results.json."""
    rows = []
    for label, path in ((stages.get("eval") or {}).get("results") or {}).items():
        rows.extend(results_rows(read_json(Path(path)) or read_json(run / "stages" / "eval" / label / "results.json")
                                 or {}, label))
    return rows


def results_rows(res: dict, label: str) -> list[dict]:
    rows = []
    for key, tres in (res.get("tasks") or {}).items():
        for metric, m in (tres.get("metrics") or {}).items():
            if isinstance(m, dict) and isinstance(m.get("value"), (int, float)):
                rows.append({"model": label, "task": key, "metric": metric, "value": m["value"],
                             "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"), "n": tres.get("n"),
                             "scorer": tres.get("scorer") or res.get("scorer")})
    return rows


def summary(run: Path, launcher=None) -> dict:
    state = (read_json(run / "state.json") or {}).get("stages") or {}
    job = read_json(run / JOB_FILE)
    order = step_order(run, state)
    status = run_status(state, order, job)
    if launcher is not None and launcher.is_queued(run.name):
        status = "queued"
    current = next((s for s in order if (state.get(s) or {}).get("status") == "running"), None)
    if current is None:
        current = next((s for s in reversed(order) if s in state), None)
    started = [v.get("started") for v in state.values() if v.get("started")]
    finished = [v.get("finished") for v in state.values() if v.get("finished")]
    duration = None
    if started:
        end = time.time() if status == "running" else max(finished or started)
        duration = round(end - min(started), 1)
    rows = eval_rows(run, state)
    final = None
    if rows:
        last_label = rows[-1]["model"]
        final = [r for r in rows if r["model"] == last_label][:3]
    return {"name": run.name, "status": status, "current_step": current,
            "current_status": (state.get(current) or {}).get("status") if current else None,
            "progress": stage_progress(run, current) if current else None,
            "steps": {s: (state.get(s) or {}).get("status", "pending") for s in order},
            "duration_s": duration, "final_metrics": final,
            "created": (read_json(run / "environment.json") or {}).get("created")}


def _data_view(run: Path) -> dict:
    d = run / "stages" / "data"
    out = {"summary": read_json(d / "summary.json"), "stats": {}, "images": [], "histograms": {}}
    for f in sorted(d.glob("*_stats.json")) if d.is_dir() else []:
        out["stats"][f.name.removesuffix("_stats.json")] = read_json(f)
    for f in sorted(d.rglob("*.png")) if d.is_dir() else []:
        out["images"].append(str(f.relative_to(run)))
    # any {"bins"/"edges": [...], "counts": [...]} the data step wrote is drawn as a histogram
    for name, obj in [("summary", out["summary"]), *out["stats"].items()]:
        _find_histograms(obj, name, out["histograms"])
    return out


def _find_histograms(obj, where: str, found: dict, depth: int = 0) -> None:
    if depth > 6 or not isinstance(obj, dict):
        return
    edges = obj.get("edges") or obj.get("bins")
    if isinstance(obj.get("counts"), list) and isinstance(edges, list):
        found[where] = {"edges": edges, "counts": obj["counts"]}
        return
    for k, v in obj.items():
        _find_histograms(v, f"{where}.{k}", found, depth + 1)


def log_tail(run: Path, lines: int = 80) -> str:
    p = run / LOG_FILE
    if not p.is_file():
        return ""
    with open(p, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 64_000))
        text = fh.read().decode("utf-8", "replace")
    # progress bars redraw with \r: keep each line's last state
    return "\n".join(line.split("\r")[-1] for line in text.splitlines()[-lines:])


def detail(run: Path, launcher=None) -> dict:
    state = (read_json(run / "state.json") or {}).get("stages") or {}
    out = summary(run, launcher)
    order = step_order(run, state)
    training = [s for s in order if s not in ("data", "eval", "examples", "report")]
    out["state"] = state
    out["stages"] = {}
    for s in training:
        m = read_json(run / "stages" / s / "metrics.json") or {}
        out["stages"][s] = {"status": (state.get(s) or {}).get("status", "pending"), "curves": curves(run, s),
                            "progress": stage_progress(run, s),
                            "metrics": {k: v for k, v in m.items() if not isinstance(v, (list, dict))},
                            "peak_rss_mb": (state.get(s) or {}).get("peak_rss_mb")}
    out["data"] = _data_view(run)
    out["eval"] = eval_rows(run, state)
    out["safety"] = {}
    for label, path in ((state.get("eval") or {}).get("results") or {}).items():
        res = read_json(Path(path)) or {}
        if res.get("safety"):
            sf = res["safety"]
            out["safety"][label] = {"n": sf.get("n"), "metrics": sf.get("metrics"), "by_category": sf.get("by_category")}
    out["examples"] = read_json(run / "stages" / "examples" / "examples.json") or []
    out["log_tail"] = log_tail(run)
    out["files"] = [f for f in ("report.html", "report.md", "report.json", "recipe.yaml") if (run / f).is_file()]
    for d in sorted(run.glob("export*")):
        out["files"] += [str(f.relative_to(run)) for f in sorted(d.rglob("*")) if f.is_file()][:50]
    out["command"] = (read_json(run / JOB_FILE) or {}).get("display")
    return out


def compare(items: list[tuple[str, Path]]) -> dict:
    """Shared metrics of two or more results (a run's final model, ``run:label``, or an eval folder):
    value and CI per item, delta against the first; loss curves per stage; pairwise tables."""
    tables = []
    for label, res in items:
        tables.append({(r["task"], r["metric"]): r for r in results_rows(res, label)})
    shared = [k for k in tables[0] if all(k in t for t in tables[1:])] if tables else []
    rows = []
    for task, metric in shared:
        base = tables[0][(task, metric)]["value"]
        cells = []
        for t in tables:
            r = t[(task, metric)]
            cells.append({"value": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "n": r["n"],
                          "delta": round(r["value"] - base, 4)})
        rows.append({"task": task, "metric": metric, "cells": cells})
    return {"items": [label for label, _ in items], "rows": rows,
            "note": "delta = item minus the first item; CI = the 95% bootstrap interval of each result"}
