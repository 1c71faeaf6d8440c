// Data: point at or upload a file -> detected format, problems with lines, first records,
// length histograms, and a de-identification preview with the spans highlighted.
"use strict";
(() => {
  const { h, api, flash, headers } = Studio;

  function marked(text, spans, cls) {
    const out = [];
    let at = 0;
    for (const s of spans) {
      out.push(text.slice(at, s.start));
      out.push(h("mark", { class: cls, title: s.entity, text: text.slice(s.start, s.end) }));
      at = s.end;
    }
    out.push(text.slice(at));
    return out;
  }

  Studio.pages.data = (el) => {
    const path = h("input", { id: "data-path", size: 50, placeholder: "a file or folder, e.g. ../shared/data/pubmedqa/pqal_test.jsonl or builtin:demo/sft" });
    const kind = h("select", { id: "data-kind" }, ["auto", "text", "sft", "preference", "mcq", "ranked", "completion"].map((k) => h("option", { text: k })));
    const upload = h("input", { id: "data-upload", type: "file" });
    const out = h("div", { id: "data-result" });

    function showResult(r) {
      const fmts = Object.values(r.formats || {});
      const deidOut = h("div", { id: "deid" });
      out.replaceChildren(
        h("p", { id: "data-summary" }, h("b", { text: r.path }), `: ${r.records} valid record(s)${r.truncated ? " (first records only)" : ""}, kind `,
          h("b", { text: r.kind || "?" }), ", format ", h("b", { id: "data-format", text: [...new Set(fmts)].join(", ") || "?" }),
          `, ${r.problem_count ?? r.problems.length} problem(s)`),
        r.problems.length ? h("ul", { id: "data-problems", class: "problems" }, r.problems.map((p) => h("li", { text: `${p.file}:${p.line}: ${p.message}` }))) : null,
        h("h3", { text: `Length histograms (${r.unit})` }),
        h("div", { class: "cards" }, Object.entries(r.lengths || {}).map(([k, hist]) => h("div", { class: "card" }, h("b", { text: k }), Charts.histogram(hist, { xlabel: r.unit })))),
        h("h3", { text: "First records" }), h("pre", { text: JSON.stringify(r.preview, null, 1) }),
        h("h3", { text: "De-identification preview" }),
        h("button", { id: "deid-run", type: "button", disabled: !(r.sample_texts || []).length, onclick: async () => {
          deidOut.textContent = "finding identifiers…";
          try {
            const d = await api("/api/data/deid", { texts: r.sample_texts });
            deidOut.replaceChildren(h("div", { class: "deid" }, h("b", { text: "original" }), h("b", { text: "de-identified" }),
              d.samples.map((s) => [h("div", { class: "deid-before" }, marked(s.original, s.original_spans, "before")),
                h("div", { class: "deid-after" }, marked(s.deidentified, s.deidentified_spans, "after"))])));
          } catch (e) { deidOut.textContent = e.message; }
        } }, "Preview de-identification of these records"), deidOut);
    }
    const inspect = async () => {
      out.textContent = "reading…";
      try { showResult(await api("/api/data/inspect", { path: path.value.trim(), kind: kind.value })); } catch (e) { flash(e.message); out.textContent = ""; }
    };
    upload.addEventListener("change", async () => {
      const f = upload.files[0];
      if (!f) return;
      out.textContent = "uploading…";
      const r = await fetch("/api/data/upload?filename=" + encodeURIComponent(f.name), { method: "POST", headers: headers(false), body: f });
      const data = await r.json();
      if (!r.ok) { flash(data.error); out.textContent = ""; return; }
      path.value = data.path;
      showResult(data);
    });
    el.replaceChildren(h("h2", { text: "Data" }),
      h("p", {}, path, " kind ", kind, " ", h("button", { id: "data-inspect", type: "button", onclick: inspect }, "Inspect"), " or upload ", upload),
      h("p", { class: "muted", text: "Nothing is used until a recipe names the file. Uploads are kept under the runs folder's .studio/uploads/." }),
      out);
  };
})();
