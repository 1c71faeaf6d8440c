// Compare: two or more runs (their last evaluated model, or run:label) or eval folders ->
// shared metrics with deltas and CIs, bars, overlaid loss curves, pairwise win/draw/loss.
"use strict";
(() => {
  const { h, api, flash, num } = Studio;

  function show(out, r) {
    const table = h("table", { id: "compare-table" },
      h("tr", {}, h("th", { text: "task" }), h("th", { text: "metric" }), r.items.map((it, i) => [h("th", { text: it }), i ? h("th", { text: "Δ vs " + r.items[0] }) : null])),
      r.rows.map((row) => h("tr", {}, h("td", { text: row.task }), h("td", { text: row.metric }),
        row.cells.map((c, i) => [h("td", { text: `${num(c.value)}` + (c.ci_low !== null && c.ci_low !== undefined ? ` [${num(c.ci_low)}, ${num(c.ci_high)}]` : "") }),
          i ? h("td", { class: "delta", text: (c.delta > 0 ? "+" : "") + num(c.delta) }) : null]))));
    const groups = r.rows.map((row) => ({ label: `${row.task.replace(":loglik", "")} ${row.metric}`,
      bars: row.cells.map((c, i) => ({ name: r.items[i], value: c.value, lo: c.ci_low, hi: c.ci_high })) }));
    const losses = Object.entries(r.losses || {}).map(([stage, runs]) => h("div", { class: "card" }, h("b", { text: stage }),
      Charts.line(Object.entries(runs).flatMap(([run, c]) => [{ name: run + " train", points: c.train }].concat(c.eval.length ? [{ name: run + " val", points: c.eval, dashed: true }] : [])))));
    const pair = (r.pairwise || []).map((p) => h("div", { class: "card" }, h("b", { text: `${p.a} vs ${p.b} (${p.n} questions, ${p.source})` }),
      h("table", {}, h("tr", {}, ["ability", "win", "draw", "loss"].map((t) => h("th", { text: t }))),
        Object.entries(p.table || {}).map(([k, v]) => h("tr", {}, h("td", { text: k }), h("td", { text: v.win }), h("td", { text: v.draw }), h("td", { text: v.loss })))),
      h("p", { class: "muted", text: p.note || "" })));
    out.replaceChildren(r.rows.length ? table : h("p", { text: "No metric is shared by all of them." }), h("p", { class: "muted", text: r.note }),
      groups.length ? Charts.bars(groups) : null,
      losses.length ? h("div", {}, h("h3", { text: "Loss curves" }), h("div", { class: "cards" }, losses)) : null,
      pair.length ? h("div", {}, h("h3", { text: "Pairwise judge (win/draw/loss of the first)" }), pair) : null);
  }

  Studio.pages.compare = async (el) => {
    const picks = h("div", { id: "compare-picks" });
    const extra = h("input", { id: "compare-extra", size: 60, placeholder: "more: run:label or eval folders, comma-separated" });
    const out = h("div", { id: "compare-result" });
    el.replaceChildren(h("h2", { text: "Compare" }), picks, h("p", {}, extra, " ",
      h("button", { id: "compare-go", type: "button", onclick: async () => {
        const items = [...picks.querySelectorAll("input:checked")].map((c) => c.value)
          .concat(extra.value.split(",").map((s) => s.trim()).filter(Boolean));
        try { show(out, await api("/api/compare?" + items.map((i) => "items=" + encodeURIComponent(i)).join("&"))); } catch (e) { flash(e.message); }
      } }, "Compare")), out);
    try {
      const runs = (await api("/api/runs")).runs.filter((r) => r.final_metrics);
      picks.replaceChildren(...(runs.length ? runs.map((r) => h("label", { style: "margin-right:1em" }, h("input", { type: "checkbox", value: r.name, "data-run": r.name }), " " + r.name))
        : [h("p", { text: "No evaluated runs yet." })]));
    } catch (e) { flash(e.message); }
  };
})();
