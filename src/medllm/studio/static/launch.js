// Launch: load a recipe YAML, edit it in the schema form (validated as you type with
// `medllm validate`'s own messages), save it, see the `medllm run` command, launch it.
"use strict";
(() => {
  const { h, api, flash } = Studio;
  let schema = null;
  const st = { data: { name: "my-run", stages: {} }, original: null, source: null, timer: null };

  Studio.pages.launch = async (el) => {
    if (!schema) schema = await api("/api/schema").catch((e) => { flash(e.message); return null; });
    if (!schema) return;
    const form = h("div", { id: "recipe-form" });
    const problems = h("ul", { id: "problems", class: "problems" });
    const summary = h("p", { id: "validation" });
    const command = h("code", { id: "command" });
    const yamlBox = h("textarea", { id: "yaml", rows: 18, cols: 90 });
    const loadPath = h("input", { id: "load-path", value: st.source || "configs/demo.yaml", size: 40 });
    const savePath = h("input", { id: "save-path", value: "", size: 40, placeholder: "where to save, e.g. configs/my-run.yaml" });
    const parallel = h("input", { id: "parallel", type: "checkbox" });

    async function validate() {
      try {
        const r = await api("/api/validate", { data: st.data, source: st.source, original: st.original });
        const unplaced = SchemaForm.showProblems(form, r.problems);
        problems.replaceChildren(...r.problems.map((p) => h("li", { text: p.text })));
        summary.replaceChildren(r.problems.length ? h("span", { class: "err", text: `${r.problems.length} problem(s)` + (unplaced.length ? ` (${unplaced.length} not tied to a field)` : "") })
          : h("span", { class: "ok", text: "OK — the recipe validates" }));
        command.textContent = r.command;
        if (document.activeElement !== yamlBox) yamlBox.value = r.yaml;
        launchBtn.disabled = r.problems.length > 0;
      } catch (e) { flash(e.message); }
    }
    const later = () => { clearTimeout(st.timer); st.timer = setTimeout(validate, 250); };
    const ctx = {
      onChange: (path, v) => { SchemaForm.set(st.data, path, v); later(); },
      onStructure: () => { draw(); validate(); },
      hide: ["serve"],
    };
    function draw() { SchemaForm.render(form, schema, st.data, ctx); }

    const load = async () => {
      try {
        const r = await api("/api/recipe/load", { path: loadPath.value.trim() });
        st.data = r.data; st.original = JSON.parse(JSON.stringify(r.data)); st.source = r.path;
        if (!savePath.value) savePath.value = r.path;
        draw(); validate(); flash("");
      } catch (e) { flash(e.message); }
    };
    const save = async () => {
      try { const r = await api("/api/recipe/save", { path: savePath.value.trim(), data: st.data }); flash("saved " + r.path); } catch (e) { flash(e.message); }
    };
    const applyYaml = async () => {
      try { const r = await api("/api/recipe/parse", { yaml: yamlBox.value }); st.data = r.data; draw(); validate(); flash(""); } catch (e) { flash(e.message); }
    };
    const launchBtn = h("button", { id: "launch", type: "button", onclick: async () => {
      try {
        const r = await api("/api/launch", { data: st.data, source: st.source, original: st.original, parallel: parallel.checked });
        location.hash = "#/run/" + encodeURIComponent(r.run);
      } catch (e) { flash(e.message); if (e.data && e.data.problems) SchemaForm.showProblems(form, e.data.problems); }
    } }, "Launch");

    el.replaceChildren(h("h2", { text: "Launch a run" }),
      h("p", {}, "Recipe YAML ", loadPath, " ", h("button", { id: "load", type: "button", onclick: load }, "Load"), "  ",
        savePath, " ", h("button", { id: "save", type: "button", onclick: save }, "Save")),
      summary, problems,
      h("p", {}, h("b", { text: "Equivalent command " })), command,
      h("p", {}, launchBtn, " ", h("label", {}, parallel, " run alongside a running run (otherwise queued: 2 cores train one at a time faster)")),
      form,
      h("h3", { text: "YAML" }), yamlBox, h("br"), h("button", { type: "button", id: "apply-yaml", onclick: applyYaml }, "Apply YAML to the form"));
    draw();
    validate();
  };
})();
