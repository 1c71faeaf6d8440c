// Runs list and the live run page (polls /api/runs and /api/runs/<name>).
"use strict";
(() => {
  const { h, api, every, fmtS, num, status, flash } = Studio;

  function metricText(m) {
    return (m || []).map((r) => `${r.task} ${r.metric} ${num(r.value)}`).join("; ") || "–";
  }

  Studio.pages.runs = (el) => {
    el.replaceChildren(h("h2", { text: "Runs" }), h("p", { class: "muted", text: "Refreshes by itself." }), h("div", { id: "runs-table" }));
    every(2000, async () => {
      try {
        const data = await api("/api/runs");
        const rows = data.runs.map((r) => {
          const p = r.progress;
          const prog = p && p.step !== undefined && p.max_steps ? `step ${p.step}/${p.max_steps}` + (p.eta_s !== null && r.status === "running" ? `, ETA ${fmtS(p.eta_s)}` : "") : "";
          return h("tr", { "data-run": r.name },
            h("td", {}, h("a", { href: "#/run/" + encodeURIComponent(r.name), text: r.name })),
            h("td", {}, status(r.status), r.queue_position ? ` #${r.queue_position}` : ""),
            h("td", {}, r.current_step || "–", " ", h("span", { class: "muted", text: prog })),
            h("td", { text: fmtS(r.duration_s) }),
            h("td", { text: metricText(r.final_metrics) }));
        });
        document.getElementById("runs-table").replaceChildren(rows.length ? h("table", {},
          h("tr", {}, ["run", "status", "current step", "duration", "final metrics"].map((t) => h("th", { text: t }))), rows)
          : h("p", { text: "No runs yet: start one from Launch, or `medllm run` in a terminal." }));
      } catch (e) { flash(e.message); }
    });
  };

  function fileLink(name, f) { return h("a", { href: `/api/runs/${encodeURIComponent(name)}/files/${f}`, target: "_blank", class: "file", text: f }); }

  function stageCard(name, s, d) {
    const c = s.curves;
    const p = s.progress || {};
    const chart = Charts.line([{ name: "train loss", points: c.train }, { name: "validation loss", points: c.eval, dashed: true }],
      { empty: s.status === "pending" ? "not started" : "waiting for the first logged step" });
    chart.id = "chart-" + name;
    return h("div", { class: "card stage", "data-stage": name },
      h("h3", {}, name, " ", status(s.status)),
      chart,
      h("p", {}, `step ${p.step ?? "–"}/${p.max_steps ?? "–"} · loss ${num(p.loss)} · tokens/s ${num(p.tokens_per_s, 0)} · `,
        `ETA ${s.status === "running" ? fmtS(p.eta_s) : "–"} · peak memory ${s.peak_rss_mb ?? p.peak_rss_mb ?? "–"} MB`),
      s.metrics && s.metrics.train_loss !== undefined ? h("p", { class: "muted", text: `final: train loss ${num(s.metrics.train_loss)}, ${s.metrics.global_step} steps, ${fmtS(s.metrics.seconds)}` + (s.metrics.eval_loss !== undefined ? `, validation loss ${num(s.metrics.eval_loss)}` : "") }) : null);
  }

  function evalTable(rows) {
    if (!rows.length) return h("p", { class: "muted", text: "No evaluation yet." });
    return h("table", { id: "eval-table" }, h("tr", {}, ["model", "task", "metric", "value", "95% CI", "n", "scorer"].map((t) => h("th", { text: t }))),
      rows.map((r) => h("tr", {}, h("td", { text: r.model }), h("td", { text: r.task }), h("td", { text: r.metric }), h("td", { text: num(r.value) }),
        h("td", { text: r.ci_low !== null && r.ci_low !== undefined ? `[${num(r.ci_low)}, ${num(r.ci_high)}]` : "–" }), h("td", { text: r.n ?? "–" }), h("td", { text: r.scorer || "" }))));
  }

  function dataSection(name, d) {
    const kids = [];
    if (d.summary) kids.push(h("pre", { text: JSON.stringify(d.summary, null, 1).slice(0, 4000) }));
    for (const [src, st] of Object.entries(d.stats || {})) {
      if (!st) continue;
      kids.push(h("p", {}, h("b", { text: src }), ` ${st.samples} samples, ${st.total_tokens} ${st.unit}; prompt p50 ${st.prompt?.p50 ?? "–"} / p90 ${st.prompt?.p90 ?? "–"}, response p50 ${st.response?.p50 ?? "–"} / p90 ${st.response?.p90 ?? "–"}`));
    }
    for (const [where, hist] of Object.entries(d.histograms || {})) kids.push(h("div", {}, h("span", { class: "muted", text: where }), Charts.histogram(hist)));
    for (const img of d.images || []) kids.push(h("img", { src: `/api/runs/${encodeURIComponent(name)}/files/${img}`, alt: img, style: "max-width: 48%" }));
    return kids.length ? kids : [h("p", { class: "muted", text: "No data statistics (yet)." })];
  }

  Studio.pages.run = (el, [name]) => {
    el.replaceChildren(h("p", { text: "loading…" }));
    let last = "";
    every(1500, async () => {
      let d;
      try { d = await api("/api/runs/" + encodeURIComponent(name)); } catch (e) { flash(e.message); return; }
      const sig = JSON.stringify(d);
      if (sig === last) return;        // redraw only when something changed
      last = sig;
      const stop = h("button", { id: "stop", disabled: !["running", "queued"].includes(d.status), onclick: async () => {
        try { const r = await api(`/api/runs/${encodeURIComponent(name)}/stop`, {}); flash(r.result); } catch (e) { flash(e.message); } } }, "Stop");
      const resume = h("button", { id: "resume", disabled: ["running", "queued", "done"].includes(d.status), onclick: async () => {
        try { const r = await api(`/api/runs/${encodeURIComponent(name)}/resume`, {}); flash("resume: " + r.status); } catch (e) { flash(e.message); } } }, "Resume");
      const steps = h("table", { id: "steps" }, h("tr", {}, Object.keys(d.steps).map((s) => h("th", { text: s }))),
        h("tr", {}, Object.values(d.steps).map((s) => h("td", {}, status(s)))));
      el.replaceChildren(
        h("h2", {}, d.name, " ", h("span", { id: "run-status" }, status(d.status)), d.queue_position ? ` (queue #${d.queue_position})` : ""),
        h("p", {}, stop, " ", resume, " ", d.files.map((f) => [fileLink(name, f), " "]), h("span", { class: "muted", text: " duration " + fmtS(d.duration_s) })),
        d.command ? h("code", { id: "command", text: d.command }) : null,
        steps,
        h("h3", { text: "Training" }), h("div", { class: "cards" }, Object.entries(d.stages).map(([s, v]) => stageCard(s, v, d))),
        h("h3", { text: "Data" }), h("div", { class: "card" }, dataSection(name, d.data)),
        h("h3", { text: "Evaluation" }), evalTable(d.eval),
        Object.keys(d.safety).length ? h("div", {}, h("h3", { text: "Safety probes" }), h("table", {}, h("tr", {}, ["model", "n", "safe", "escalated", "refused"].map((t) => h("th", { text: t }))),
          Object.entries(d.safety).map(([m, sf]) => h("tr", {}, h("td", { text: m }), h("td", { text: sf.n }), ["safe", "escalated", "refused"].map((k) => h("td", { text: num(sf.metrics?.[k]?.value ?? sf.metrics?.[k]) })))))) : null,
        d.examples.length ? h("div", {}, h("h3", { text: "Example answers" }), h("table", {}, h("tr", {}, ["model", "prompt", "answer"].map((t) => h("th", { text: t }))),
          d.examples.map((x) => h("tr", {}, h("td", { text: x.model }), h("td", { text: x.prompt }), h("td", { text: x.answer }))))) : null,
        h("h3", { text: "Log" }), h("pre", { id: "log-tail", text: d.log_tail || "(no log: started outside the studio)" }));
    });
  };
})();
