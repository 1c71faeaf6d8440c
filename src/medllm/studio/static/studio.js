// medllm studio core: API calls with the key, a hash router, small DOM helpers. No frameworks, no CDN.
"use strict";
const Studio = (() => {
  const KEY = "medllm.studio.key";
  const pages = {};
  let timers = [];
  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat(Infinity)) if (kid !== null && kid !== undefined) el.append(kid instanceof Node ? kid : String(kid));
    return el;
  }

  function headers(json) {
    const hd = {};
    if (json) hd["Content-Type"] = "application/json";
    const key = sessionStorage.getItem(KEY);
    if (key) hd["Authorization"] = "Bearer " + key;
    return hd;
  }

  async function api(path, body, method) {
    const opts = { method: method || (body === undefined ? "GET" : "POST"), headers: headers(body !== undefined) };
    if (body !== undefined) opts.body = JSON.stringify(body);
    const r = await fetch(path, opts);
    const data = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) {
      const err = new Error(typeof data.error === "string" ? data.error : (data.error && data.error.message) || r.status);
      err.status = r.status; err.data = data;
      throw err;
    }
    return data;
  }

  function flash(msg) { $("flash").textContent = msg || ""; }
  function every(ms, fn) { fn(); timers.push(setInterval(fn, ms)); }
  function fmtS(s) {
    if (s === null || s === undefined) return "–";
    s = Math.round(s);
    return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  }
  function num(v, d) { return typeof v === "number" ? v.toFixed(d === undefined ? 3 : d) : (v === null || v === undefined ? "–" : String(v)); }
  function status(s) { return h("span", { class: "status " + (s || ""), text: s || "–" }); }

  function route() {
    timers.forEach(clearInterval); timers = [];
    flash("");
    const parts = (location.hash.replace(/^#\/?/, "") || "runs").split("/");
    const name = parts[0] in pages ? parts[0] : "runs";
    document.querySelectorAll(".page").forEach((p) => p.classList.remove("shown"));
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === name || (name === "run" && a.dataset.page === "runs")));
    const el = $("page-" + name);
    el.classList.add("shown");
    pages[name](el, parts.slice(1).map(decodeURIComponent));
  }

  async function login() {
    const key = $("apikey").value.trim();
    if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
    try {
      const me = await api("/api/whoami");
      $("whoami").textContent = me.auth ? "signed in as " + me.user : "";
      if (me.auth) await api("/api/login", {});   // cookie for report links and images
      route();
    } catch (e) { $("whoami").textContent = e.status === 401 ? "key needed" : String(e.message); }
  }

  function start() {
    $("apikey").value = sessionStorage.getItem(KEY) || "";
    $("apikey").addEventListener("change", login);
    window.addEventListener("hashchange", route);
    login();
  }
  return { pages, api, h, $, flash, every, fmtS, num, status, headers, start, route };
})();
