// A form generated from the recipe's JSON schema (pydantic's model_json_schema: the one
// source of truth). It edits a plain object; keys the user never set stay unset (the
// schema default shows as placeholder), so a loaded YAML stays as it was written.
"use strict";
const SchemaForm = (() => {
  const { h } = Studio;
  let root, defs;

  function deref(s) {
    while (s && s.$ref) s = defs[s.$ref.split("/").pop()];
    return s || {};
  }
  // {schema, nullable}: Optional[X] -> X; other unions stay as anyOf
  function unwrap(s) {
    s = deref(s);
    if (s.anyOf) {
      const opts = s.anyOf.map(deref).filter((o) => o.type !== "null");
      const nullable = opts.length < s.anyOf.length;
      if (opts.length === 1) return { schema: { ...opts[0], default: s.default, description: s.description || opts[0].description, title: s.title || opts[0].title }, nullable };
      return { schema: { ...s, anyOf: opts }, nullable };
    }
    return { schema: s, nullable: false };
  }
  const get = (obj, path) => path.reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), obj);
  function set(obj, path, v) {
    let o = obj;
    path.slice(0, -1).forEach((k, i) => { if (o[k] === undefined || o[k] === null || typeof o[k] !== "object") o[k] = typeof path[i + 1] === "number" ? [] : {}; o = o[k]; });
    if (v === undefined) delete o[path[path.length - 1]]; else o[path[path.length - 1]] = v;
  }
  const show = (v) => v === undefined ? "" : (typeof v === "string" ? v : JSON.stringify(v));

  function parseScalar(text, s) {
    if (text.trim() === "") return undefined;
    const t = s.type;
    if (t === "integer" || t === "number") { const n = Number(text); return text.trim() !== "" && !isNaN(n) ? n : text; }
    if (t === "array" && deref(s.items).type === "string") return text.split(",").map((x) => x.trim()).filter(Boolean);
    if (t === "string" || s.enum || s.const) return text;
    try { return JSON.parse(text); } catch (e) { return text; }   // unions, dicts: JSON, else a string
  }

  // one leaf input
  function leaf(key, s, path, value, onChange) {
    const id = "f-" + path.join(".");
    let input;
    const def = s.default !== undefined && s.default !== null ? `default: ${show(s.default)}` : "";
    if (s.enum || s.type === "boolean") {
      const options = s.type === "boolean" ? [true, false] : s.enum;
      input = h("select", { id }, h("option", { value: "", text: def ? `(${def})` : "(unset)" }),
        options.map((o) => h("option", { value: JSON.stringify(o), text: String(o), selected: value === o })));
      input.addEventListener("change", () => onChange(path, input.value === "" ? undefined : JSON.parse(input.value)));
    } else {
      const text = s.type === "array" && deref(s.items).type === "string" && Array.isArray(value) ? value.join(", ") : show(value);
      input = h("input", { id, value: text, placeholder: def, type: "text" });
      input.addEventListener("input", () => onChange(path, parseScalar(input.value, s), true));
    }
    return h("div", { class: "field", "data-path": path.join(".") },
      h("label", { for: id, title: s.description || "", text: key }), input, h("div", { class: "err" }));
  }

  function node(key, rawSchema, path, value, ctx) {
    const { schema: s } = unwrap(rawSchema);
    if (s.type === "object" && s.properties) return objectBox(key, s, path, value, ctx);
    if (s.type === "object" && s.additionalProperties && deref(s.additionalProperties).oneOf) return stagesBox(key, s, path, value, ctx);
    if (s.type === "array" && deref(s.items).type === "object") return listBox(key, deref(s.items), path, value, ctx);
    return leaf(key, s, path, value, ctx.onChange);
  }

  function objectBox(key, s, path, value, ctx) {
    const kids = Object.entries(s.properties).filter(([k]) => !(ctx.hide || []).includes(path.concat(k).join(".")))
      .map(([k, sub]) => node(k, sub, path.concat(k), value ? value[k] : undefined, ctx));
    return path.length ? h("fieldset", { "data-path": path.join(".") }, h("legend", { text: key }), kids, h("div", { class: "err" })) : h("div", {}, kids);
  }

  function listBox(key, itemSchema, path, value, ctx) {
    const items = Array.isArray(value) ? value : [];
    return h("fieldset", { "data-path": path.join(".") }, h("legend", { text: key }),
      items.map((it, i) => h("div", { class: "card" },
        node(`${key}[${i}]`, itemSchema, path.concat(i), it, ctx),
        h("button", { type: "button", class: "remove", onclick: () => { items.splice(i, 1); ctx.onStructure(); } }, "remove"))),
      h("button", { type: "button", class: "add", onclick: () => { set(ctx.data, path, items.concat([{}])); ctx.onStructure(); } }, "add " + key),
      h("div", { class: "err" }));
  }

  function stagesBox(key, s, path, value, ctx) {
    const union = deref(s.additionalProperties);
    const mapping = union.discriminator.mapping;
    const types = Object.keys(mapping);
    const stages = value && typeof value === "object" ? value : {};
    const boxes = Object.entries(stages).map(([name, st]) => {
      const type = (st && st.type) || (types.includes(name) ? name : types[0]);
      const sub = deref({ $ref: mapping[type] });
      const typeSel = h("select", { class: "stage-type" }, types.map((t) => h("option", { value: t, text: t, selected: t === type })));
      typeSel.addEventListener("change", () => { st.type = typeSel.value; ctx.onStructure(); });
      const inner = objectBox(name, { ...sub, properties: Object.fromEntries(Object.entries(sub.properties).filter(([k]) => k !== "type")) },
        path.concat(name), st, ctx);
      return h("div", { class: "card", "data-stage": name }, h("b", { text: `stage ${name} ` }), "type ", typeSel, " ",
        h("button", { type: "button", class: "remove-stage", onclick: () => { delete stages[name]; ctx.onStructure(); } }, "remove stage"), inner);
    });
    const newName = h("input", { placeholder: "new stage name", size: 14, id: "new-stage" });
    return h("fieldset", { "data-path": path.join(".") }, h("legend", { text: key + " (run in this order)" }), boxes,
      newName, h("button", { type: "button", onclick: () => {
        const n = newName.value.trim(); if (!n || stages[n]) return;
        set(ctx.data, path.concat(n), types.includes(n) ? {} : { type: "sft" }); ctx.onStructure(); } }, "add stage"),
      h("div", { class: "err" }));
  }

  function render(container, schema, data, ctx) {
    root = schema; defs = schema.$defs || {};
    ctx.data = data;
    container.replaceChildren(objectBox("", schema, [], data, ctx));
  }

  // problems: [{where, text}] -> the field with that path (or its nearest shown ancestor)
  function showProblems(container, problems) {
    container.querySelectorAll(".err").forEach((e) => { e.textContent = ""; });
    container.querySelectorAll(".bad").forEach((e) => e.classList.remove("bad"));
    const unplaced = [];
    for (const p of problems) {
      let parts = p.where ? p.where.split(".") : [];
      let target = null;
      while (parts.length && !target) {
        target = container.querySelector(`[data-path="${CSS.escape(parts.join("."))}"]`);
        if (!target) parts = parts.slice(0, -1);
      }
      if (!target) { unplaced.push(p); continue; }
      target.classList.add("bad");
      const err = target.querySelector(":scope > .err");
      err.textContent = (err.textContent ? err.textContent + "\n" : "") + p.text;
    }
    return unplaced;
  }
  return { render, showProblems, set, get };
})();
