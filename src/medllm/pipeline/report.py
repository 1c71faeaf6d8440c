"""The run report: ``report.html`` (self-contained: images inlined) and ``report.md``.

Reads only files in the run folder (state.json, stage metrics, eval results, examples),
so it can be rebuilt at any time with ``medllm run RECIPE --from report``.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from medllm.io import atomic_write_text
from medllm.runs import RunFolder

DISCLAIMER = ("This model is a research artefact. It is not a medical device and not a substitute for "
              "a clinician; its answers can be wrong or unsafe and must be checked by a qualified professional.")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _img_tag(png: Path | bytes, alt: str) -> str:
    data = png if isinstance(png, bytes) else png.read_bytes()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _params(model_dir: str | None) -> int | None:
    if not model_dir:
        return None
    cfg = _read_json(Path(model_dir) / "config.json") or {}
    try:
        from safetensors import safe_open

        total = 0
        for f in Path(model_dir).glob("*.safetensors"):
            with safe_open(str(f), "pt") as fh:
                for k in fh.keys():
                    total += _prod(fh.get_slice(k).get_shape())
        return total or None
    except Exception:
        return cfg.get("num_parameters")


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def collect(run: RunFolder) -> dict:
    """Everything the report shows, as plain data (also written as report.json)."""
    recipe = run.recipe()
    state = run.state()["stages"]
    env = _read_json(run.path / "environment.json") or {}
    threads = (env.get("machine") or {}).get("torch_threads") or 1
    timeline = []
    for step, st in state.items():
        metrics = st.get("metrics") or {}
        tokens = metrics.get("tokens") or metrics.get("train_tokens")
        n_params = _params(st.get("base_model")) if tokens else None
        timeline.append({
            "step": step, "status": st.get("status"), "seconds": st.get("seconds"),
            "core_seconds": round(st["seconds"] * threads, 1) if st.get("seconds") else None,
            "tokens": tokens,
            # 6·N·T: forward + backward FLOPs of a dense decoder per trained token (an upper
            # bound for LoRA, which skips most weight gradients).
            "est_flops": (6 * n_params * tokens) if (n_params and tokens) else None,
            "train_loss": metrics.get("train_loss"), "eval_loss": metrics.get("eval_loss"),
            "peak_rss_mb": st.get("peak_rss_mb"),
        })
    evals = {}
    for label, path in ((state.get("eval") or {}).get("results") or {}).items():
        res = _read_json(Path(path)) or {}
        evals[label] = {"results": res, "safety": res.get("safety")}
    examples = _read_json(run.stage_dir("examples") / "examples.json") or []
    return {"recipe": recipe.model_dump(mode="json"), "environment": env, "timeline": timeline,
            "evals": evals, "examples": examples,
            "data": _read_json(run.stage_dir("data") / "summary.json")}


# What each task's number measures, shown beside it: the demo MCQ re-asks the training
# knowledge base's own facts in new words, so it measures uptake of what was taught, not
# medical ability; PubMedQA (research abstracts the demo never trains on) is the measure of
# ability the training data could not teach by rote.
TASK_MEANING = {
    "demo_mcq": "knowledge uptake: picks the taught fact among 4 options (held-out rewording of the training KB)",
    "demo_free:generate": "knowledge uptake: states the taught fact in a free answer (held-out rewording, "
                          "greedy answer, fact matcher)",
    "pubmedqa": "medical ability (PubMedQA, not in the training data)",
}
ABILITY_NOTES = {
    "pubmedqa": ("PubMedQA has three answers (chance 0.33; answering 'yes' every time scores 0.55 on "
                 "the labelled test set): a model of about 135M parameters sits near chance there, so a "
                 "change within the CI is no evidence of better medical reasoning."),
}


def _task_meaning(task: str, recipe: dict) -> str:
    meaning = TASK_MEANING.get(task, "")
    for t in (recipe.get("eval") or {}).get("tasks") or []:
        if t.get("task") == task and t.get("limit"):
            how = "seeded random sample" if t.get("sample") == "random" else "first"
            meaning += f"{'; ' if meaning else ''}{how} {t['limit']} items"
            break
    return meaning


def _data_lines(data: dict | None) -> list[str]:
    if not data or not data.get("datasets"):
        return ["", "## Data", "", "No data summary was recorded for this run."]
    unit = data.get("unit", "tokens")
    lines = ["", "## Data", "", f"Lengths in {unit}" + (f" of `{data['tokenizer']}`" if data.get("tokenizer") else "")
             + " (p50 / p90 / max); histograms below.", "",
             "| dataset | samples | total | prompt p50 / p90 / max | response p50 / p90 / max |", "|---|---|---|---|---|"]

    def trio(s):
        return "–" if not s or not s.get("count") else f"{s['p50']} / {s['p90']} / {s['max']}"

    for name, st in data["datasets"].items():
        total = st.get("total_tokens_estimated") or st.get("total_tokens")
        note = f" (est. from {st['measured_on']} rows)" if st.get("measured_on") else ""
        lines.append(f"| {name} | {st.get('samples')} | {_fmt(total)}{note} | {trio(st.get('prompt'))} | "
                     f"{trio(st.get('response'))} |")
    for name, src in (data.get("sources") or {}).items():
        if src.get("rejected") or src.get("after_clean") is not None:
            kept = src.get("after_clean", src.get("loaded"))
            lines.append(f"- {name}: {src.get('loaded')} loaded, {src.get('rejected') or 0} rejected, {kept} kept after cleaning")
    return lines


def _eval_rows(evals: dict) -> list[dict]:
    rows = []
    for label, ev in evals.items():
        res = ev.get("results") or {}
        for key, tres in (res.get("tasks") or {}).items():
            task = key.replace(":loglik", "")  # the scoring mode is shown only when not the default
            for metric, m in (tres.get("metrics") or {}).items():
                if isinstance(m, dict) and "value" in m:
                    rows.append({"model": label, "task": task, "metric": metric, "value": m["value"],
                                 "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"), "n": tres.get("n")})
    return rows


def _eval_chart(rows: list[dict]) -> bytes | None:
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one bar group per task's first metric, one bar per model
    first_metric = {}
    for r in rows:
        first_metric.setdefault(r["task"], r["metric"])
    keep = [r for r in rows if first_metric[r["task"]] == r["metric"]]
    tasks = list(dict.fromkeys(r["task"] for r in keep))
    models = list(dict.fromkeys(r["model"] for r in keep))
    fig, ax = plt.subplots(figsize=(max(5, 1.8 * len(tasks) * max(1, len(models)) / 2), 3.6))
    width = 0.8 / max(1, len(models))
    for i, m in enumerate(models):
        xs, ys, lo, hi = [], [], [], []
        for j, t in enumerate(tasks):
            r = next((r for r in keep if r["model"] == m and r["task"] == t), None)
            if r is None:
                continue
            xs.append(j + i * width)
            ys.append(r["value"])
            lo.append(r["value"] - (r["ci_low"] if r["ci_low"] is not None else r["value"]))
            hi.append((r["ci_high"] if r["ci_high"] is not None else r["value"]) - r["value"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=m)
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(tasks))])
    ax.set_xticklabels([f"{t}\n({first_metric[t]})" for t in tasks], fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Evaluation by model (95% bootstrap CI)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _fmt(v, digits=3):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, int) and v > 10**6:
        return f"{v:.3g}"
    return str(v)


def _serve_commands(run: RunFolder) -> list[str]:
    return [f"medllm serve {run.path}", f"medllm chat {run.path}", f"medllm export {run.path} --out {run.path}/export"]


def render_markdown(run: RunFolder, data: dict) -> str:
    rec = data["recipe"]
    lines = [f"# medllm run report: {rec['name']}", "", rec.get("description") or "", "",
             f"Base model: `{rec['model']['name']}`", "", "## Pipeline timeline", "",
             "| step | status | seconds | core-seconds | tokens | est. FLOPs | train loss | eval loss |",
             "|---|---|---|---|---|---|---|---|"]
    steps = [t for t in data["timeline"] if t["step"] != "report"]  # the report is being written now
    for t in steps:
        lines.append(f"| {t['step']} | {t['status']} | {_fmt(t['seconds'], 1)} | {_fmt(t['core_seconds'], 1)} | "
                     f"{_fmt(t['tokens'])} | {_fmt(t['est_flops'])} | {_fmt(t['train_loss'])} | {_fmt(t['eval_loss'])} |")
    total = sum(t["seconds"] or 0 for t in steps)
    total_core = sum(t["core_seconds"] or 0 for t in steps)
    flops = sum(t["est_flops"] or 0 for t in steps)
    peak = max((t.get("peak_rss_mb") or 0 for t in steps), default=0)
    lines.append(f"| **total** | | {_fmt(total, 1)} | {_fmt(total_core, 1)} | | {_fmt(flops or None)} | | |")
    if peak:
        lines += ["", f"Peak resident memory of the pipeline process: {peak * 2**20 / 1e9:.2f} GB "
                      f"({peak / 1024:.2f} GiB)."]
    lines += _data_lines(data.get("data"))
    rows = _eval_rows(data["evals"])
    lines += ["", "## Evaluation", "", "| model | task | measures | metric | value | 95% CI | n |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['task']} | {_task_meaning(r['task'], rec) or '–'} | {r['metric']} | "
                     f"{_fmt(r['value'])} | [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | {r['n'] or '–'} |")
    skipped = {k: v for ev in data["evals"].values() for k, v in ((ev.get("results") or {}).get("skipped") or {}).items()}
    for key, why in skipped.items():
        lines += ["", f"Not scored: {key} ({why})."]
    for task in dict.fromkeys(r["task"] for r in rows):
        if task in ABILITY_NOTES:
            lines += ["", f"Note on {task}: {ABILITY_NOTES[task]}"]
    lines += ["", "## Safety probes", ""]
    for label, ev in data["evals"].items():
        s = ev.get("safety")
        if s:
            safe = (s.get("metrics") or {}).get("safe") or {}
            cats = ", ".join(f"{c}: {_fmt(v.get('safe_rate'), 2)}" for c, v in (s.get("by_category") or {}).items())
            lines.append(f"- **{label}**: safe answers {_fmt(safe.get('value'))} "
                         f"[{_fmt(safe.get('ci_low'))}, {_fmt(safe.get('ci_high'))}] of {s.get('n')} probes ({cats})")
    lines += ["", "## Example answers (greedy)", ""]
    if any("correct" in ex for ex in data["examples"]):
        lines += ["Held-out free-answer items (seeded pick), as scored in the evaluation above.", ""]
    for ex in data["examples"]:
        lines += [f"**{ex['model']}** — *{ex['prompt']}*", "", "> " + (ex["answer"] or "(empty)").replace("\n", "\n> "), ""]
        if "correct" in ex:
            verdict = "correct" if ex["correct"] else "wrong"
            lines += [f"Matcher: **{verdict}** (the knowledge base says: {ex['fact']})", ""]
    lines += ["## Use the model", "", "```", *_serve_commands(run), "```", "", "## Model card", "",
              "- Intended use: research and education on medical question answering inside the institution.",
              f"- Training data: {', '.join(s['name'] + ' (' + s['path'] + ')' for s in rec['data']['sources']) or 'none'}.",
              f"- Stages: {', '.join(rec['stages']) or 'none'}.",
              "- Limitations: small models hallucinate; evaluation covers only the listed tasks.",
              f"- {DISCLAIMER}", ""]
    return "\n".join(lines)


def _md_to_html(md: str) -> str:
    """A small Markdown subset (headings, tables, lists, quotes, code, bold/italic)."""
    import re

    out, in_table, in_code = [], False, False
    for line in md.splitlines():
        if line.startswith("```"):
            out.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            out.append(html.escape(line))
            continue
        esc = html.escape(line)
        esc = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", esc)
        esc = re.sub(r"\*(.+?)\*", r"<i>\1</i>", esc)
        esc = re.sub(r"`(.+?)`", r"<code>\1</code>", esc)
        if line.startswith("|"):
            cells = [c.strip() for c in esc.strip("|").split("|")]
            if all(set(c) <= {"-"} for c in cells):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("# "):
            out.append(f"<h1>{esc[2:]}</h1>")
        elif line.startswith("## "):
            out.append(f"<h2>{esc[3:]}</h2>")
        elif line.startswith("- "):
            out.append(f"<li>{esc[2:]}</li>")
        elif line.startswith("&gt; "):
            out.append(f"<blockquote>{esc[5:]}</blockquote>")
        elif line.strip():
            out.append(f"<p>{esc}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)


CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f0f4f8}blockquote{border-left:3px solid #9ab;margin:0.3em 0 1em;padding:0.2em 1em;color:#333;
white-space:pre-wrap}img{max-width:100%;display:block;margin:0.5em 0}pre{background:#f6f6f6;padding:0.8em}
.disclaimer{background:#fff4e5;border:1px solid #f0c36d;padding:0.7em 1em;border-radius:4px}"""


def write_report(run: RunFolder) -> dict[str, Path]:
    from medllm.io import atomic_write_json

    data = collect(run)
    md = render_markdown(run, data)
    body = _md_to_html(md)
    figures = []
    chart = _eval_chart(_eval_rows(data["evals"]))
    if chart:
        figures.append("<h2>Evaluation chart</h2>" + _img_tag(chart, "evaluation chart"))
    for stage in data["recipe"]["stages"]:
        png = run.path / "stages" / stage / "loss_curve.png"
        if png.is_file():
            figures.append(f"<h3>Loss curve: {html.escape(stage)}</h3>" + _img_tag(png, f"loss {stage}"))
    data_dir = run.path / "stages" / "data"
    for png in sorted(data_dir.rglob("*.png")) if data_dir.is_dir() else []:
        figures.append(f"<h3>Data: {html.escape(png.stem)}</h3>" + _img_tag(png, png.stem))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>medllm report {html.escape(run.path.name)}"
            f"</title><style>{CSS}</style></head><body><p class='disclaimer'>{html.escape(DISCLAIMER)}</p>"
            f"{body}{''.join(figures)}</body></html>")
    paths = {"md": run.path / "report.md", "html": run.path / "report.html", "json": run.path / "report.json"}
    atomic_write_text(paths["md"], md)
    atomic_write_text(paths["html"], page)
    atomic_write_json(paths["json"], data)
    return paths
