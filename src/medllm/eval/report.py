"""Reports: Markdown + a self-contained HTML (plots embedded as base64 PNG) for one run,
and a before/after comparison of two runs (``compare``)."""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from medllm.io import atomic_write_json, atomic_write_text


def _fmt(m: dict) -> str:
    return f"{m['value']:.4f} [{m['ci_low']:.4f}, {m['ci_high']:.4f}]"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _primary(task: dict) -> tuple[str, dict] | None:
    for name, m in task.get("metrics", {}).items():
        return name, m
    return None


def _bars(labels: list[str], series: dict[str, list[float]], errs: dict[str, list[tuple]] | None, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(labels) + 2), 3.2))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for k, (name, vals) in enumerate(series.items()):
        yerr = None
        if errs and name in errs:
            yerr = np.array([[v - lo for v, (lo, _) in zip(vals, errs[name])],
                             [hi - v for v, (_, hi) in zip(vals, errs[name])]]).clip(min=0)
        ax.bar(x + k * width, vals, width, label=name, yerr=yerr, capsize=3)
    ax.set_xticks(x + width * (len(series) - 1) / 2, labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _png(fig)


def _rows(result: dict) -> list[tuple[str, str, dict]]:
    return [(key, name, m) for key, t in result["tasks"].items() for name, m in t["metrics"].items()]


def markdown(result: dict) -> str:
    lines = [f"# Evaluation: {result['label']}", "", f"model `{result['model']}`"
             + (f" + adapter `{result['adapter']}`" if result.get("adapter") else "")
             + f", dtype {result.get('dtype')}, seed {result.get('seed')}, {result.get('created')}", "",
             "| task | n | metric | value [95% CI] |", "|---|---|---|---|"]
    for key, name, m in _rows(result):
        lines.append(f"| {key} | {result['tasks'][key]['n']} | {name} | {_fmt(m)} |")
    for key, why in result.get("skipped", {}).items():
        lines.append(f"| {key} | - | skipped | {why} |")
    notes = [f"- {k}: {n}" for k, t in result["tasks"].items() for n in t.get("notes", [])]
    if notes:
        lines += ["", "Notes:", *notes]
    if result.get("safety"):
        s = result["safety"]
        lines += ["", "## Safety probes", "", f"safe rate {_fmt(s['metrics']['safe'])} over {s['n']} probes "
                  f"({s['note']})", "", "| category | n | safe rate |", "|---|---|---|"]
        lines += [f"| {c} | {v['n']} | {v['safe_rate']:.3f} |" for c, v in s["by_category"].items()]
    if result.get("forgetting"):
        f = result["forgetting"]
        lines += ["", "## Forgetting probe (perplexity, lower is better)", "", "| text | perplexity | tokens |",
                  "|---|---|---|"]
        lines += [f"| {k} ({f[k]['path']}) | {f[k]['perplexity']:.3f} | {f[k]['tokens']} |" for k in ("domain", "general")]
    return "\n".join(lines) + "\n"


def _html_page(title: str, md_text: str, images: list[tuple[str, str]]) -> str:
    body = []
    for line in md_text.splitlines():
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    out, in_table = [], False
    for b in body:  # wrap consecutive rows in one table
        if b.startswith("<tr>") and not in_table:
            out.append("<table>")
            in_table = True
        if not b.startswith("<tr>") and in_table:
            out.append("</table>")
            in_table = False
        out.append(b)
    if in_table:
        out.append("</table>")
    imgs = "".join(f"<figure><img alt='{html.escape(c)}' src='data:image/png;base64,{d}'><figcaption>"
                   f"{html.escape(c)}</figcaption></figure>" for c, d in images)
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
             "td{border:1px solid #ccc;padding:3px 8px;font-size:13px}tr:first-child td{font-weight:bold}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(out)}{imgs}</body></html>\n")


def write_reports(result: dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    md = markdown(result)
    atomic_write_text(out_dir / "report.md", md)
    rows = _rows(result)
    images = []
    if rows:
        labels = [f"{k}\n{n}" for k, n, _ in rows]
        images.append(("per-task metrics (95% CI)", _bars(labels, {result["label"]: [m["value"] for *_, m in rows]},
                                                          {result["label"]: [(m["ci_low"], m["ci_high"]) for *_, m in rows]},
                                                          "per-task metrics")))
    atomic_write_text(out_dir / "report.html", _html_page(f"medllm eval: {result['label']}", md, images))


# ------------------------------------------------------------------ compare two runs
def _load(p: Path | dict) -> dict:
    if isinstance(p, dict):
        return p
    p = Path(p)
    return json.loads((p / "results.json" if p.is_dir() else p).read_text(encoding="utf-8"))


def compare(results_a, results_b, out: Path) -> dict:
    """Before/after table and plot of two ``results.json`` (or run folders). Writes
    ``compare.json``, ``compare.md`` and ``compare.html`` into ``out``."""
    a, b = _load(results_a), _load(results_b)
    la, lb = a.get("label", "A"), b.get("label", "B")
    if la == lb:
        la, lb = f"A:{la}", f"B:{lb}"
    rows = []
    for key in sorted(set(a["tasks"]) & set(b["tasks"])):
        for name in a["tasks"][key]["metrics"]:
            mb = b["tasks"][key]["metrics"].get(name)
            if mb is None:
                continue
            ma = a["tasks"][key]["metrics"][name]
            overlap = not (ma["ci_high"] < mb["ci_low"] or mb["ci_high"] < ma["ci_low"])
            rows.append({"task": key, "metric": name, "a": ma["value"], "b": mb["value"],
                         "delta": round(mb["value"] - ma["value"], 6), "cis_overlap": overlap})
    if a.get("safety") and b.get("safety"):
        rows.append({"task": "safety", "metric": "safe", "a": a["safety"]["metrics"]["safe"]["value"],
                     "b": b["safety"]["metrics"]["safe"]["value"],
                     "delta": round(b["safety"]["metrics"]["safe"]["value"] - a["safety"]["metrics"]["safe"]["value"], 6),
                     "cis_overlap": None})
    only = {"only_a": sorted(set(a["tasks"]) - set(b["tasks"])), "only_b": sorted(set(b["tasks"]) - set(a["tasks"]))}
    comp = {"a": {"label": la, "model": a["model"]}, "b": {"label": lb, "model": b["model"]}, "rows": rows, **only}
    for side, res in (("a", a), ("b", b)):
        if res.get("forgetting"):
            comp[side]["forgetting"] = {k: res["forgetting"][k]["perplexity"] for k in ("domain", "general")}
    md = [f"# Compare: {la} -> {lb}", "", f"| task | metric | {la} | {lb} | delta | 95% CIs overlap |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['task']} | {r['metric']} | {r['a']:.4f} | {r['b']:.4f} | {r['delta']:+.4f} | {r['cis_overlap']} |"
           for r in rows]
    if "forgetting" in comp["a"] and "forgetting" in comp["b"]:
        md += ["", "## Forgetting (perplexity)", "", f"| text | {la} | {lb} |", "|---|---|---|"]
        md += [f"| {k} | {comp['a']['forgetting'][k]:.3f} | {comp['b']['forgetting'][k]:.3f} |" for k in ("domain", "general")]
    md_text = "\n".join(md) + "\n"
    out = Path(out)
    atomic_write_json(out / "compare.json", comp)
    atomic_write_text(out / "compare.md", md_text)
    images = []
    if rows:
        images.append(("before/after", _bars([f"{r['task']}\n{r['metric']}" for r in rows],
                                             {la: [r["a"] for r in rows], lb: [r["b"] for r in rows]}, None,
                                             f"{la} vs {lb}")))
    atomic_write_text(out / "compare.html", _html_page("medllm compare", md_text, images))
    return comp
