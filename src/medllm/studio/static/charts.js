// Small SVG charts: line (loss curves), grouped bars with CI whiskers, histograms.
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"];
  function s(tag, attrs, text) {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }
  function frame(w, hgt) { return s("svg", { class: "chart", width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}` }); }
  function ticks(lo, hi, n) { const out = []; for (let i = 0; i <= n; i++) out.push(lo + (hi - lo) * i / n); return out; }
  const fmt = (v) => Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2);

  // series: [{name, points: [[x, y], ...], dashed}]
  function line(series, opts) {
    opts = opts || {};
    const W = opts.width || 460, H = opts.height || 220, L = 48, R = 10, T = 12, B = 32;
    const svg = frame(W, H);
    const pts = series.flatMap((se) => se.points);
    svg.dataset.points = String(series.length ? series[0].points.length : 0);
    if (!pts.length) { svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#888" }, opts.empty || "no points yet")); return svg; }
    let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
    const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), Y = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
    for (const t of ticks(y0, y1, 4)) {
      svg.append(s("line", { x1: L, x2: W - R, y1: Y(t), y2: Y(t), stroke: "#eee" }));
      svg.append(s("text", { x: L - 4, y: Y(t) + 4, "text-anchor": "end", "font-size": 10 }, fmt(t)));
    }
    for (const t of ticks(x0, x1, 4)) svg.append(s("text", { x: X(t), y: H - B + 14, "text-anchor": "middle", "font-size": 10 }, fmt(t)));
    svg.append(s("text", { x: W / 2, y: H - 4, "text-anchor": "middle", "font-size": 11 }, opts.xlabel || "step"));
    series.forEach((se, i) => {
      const c = se.color || COLORS[i % COLORS.length];
      if (se.points.length > 1) svg.append(s("polyline", { points: se.points.map((p) => `${X(p[0])},${Y(p[1])}`).join(" "), fill: "none", stroke: c, "stroke-width": 2, "stroke-dasharray": se.dashed ? "5 3" : "" }));
      for (const p of se.points) svg.append(s("circle", { cx: X(p[0]), cy: Y(p[1]), r: se.points.length > 60 ? 1.5 : 3, fill: c }));
      svg.append(s("text", { x: L + 8, y: T + 12 + 13 * i, fill: c, "font-size": 11 }, se.name));
    });
    return svg;
  }

  // groups: [{label, bars: [{name, value, lo, hi}]}]
  function bars(groups, opts) {
    opts = opts || {};
    const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
    const W = opts.width || Math.max(320, 80 + groups.length * (names.length * 26 + 24)), H = opts.height || 220, L = 40, B = 40, T = 14;
    const svg = frame(W, H);
    const hi = Math.max(1e-9, ...groups.flatMap((g) => g.bars.map((b) => Math.max(b.value, b.hi ?? b.value))));
    const top = hi <= 1 ? 1 : hi * 1.1;
    const Y = (v) => H - B - v / top * (H - T - B);
    for (const t of ticks(0, top, 4)) {
      svg.append(s("line", { x1: L, x2: W, y1: Y(t), y2: Y(t), stroke: "#eee" }));
      svg.append(s("text", { x: L - 4, y: Y(t) + 4, "text-anchor": "end", "font-size": 10 }, fmt(t)));
    }
    let x = L + 12;
    for (const g of groups) {
      const start = x;
      g.bars.forEach((b) => {
        const c = COLORS[names.indexOf(b.name) % COLORS.length];
        svg.append(s("rect", { x, y: Y(b.value), width: 22, height: Math.max(0, H - B - Y(b.value)), fill: c }, ""));
        if (b.lo !== null && b.lo !== undefined && b.hi !== null && b.hi !== undefined)
          svg.append(s("line", { x1: x + 11, x2: x + 11, y1: Y(b.lo), y2: Y(b.hi), stroke: "#222", "stroke-width": 1.5 }));
        x += 26;
      });
      svg.append(s("text", { x: (start + x) / 2, y: H - B + 14, "text-anchor": "middle", "font-size": 10 }, g.label));
      x += 24;
    }
    names.forEach((n, i) => svg.append(s("text", { x: L + 8 + 150 * i, y: H - 6, fill: COLORS[i % COLORS.length], "font-size": 11 }, n)));
    return svg;
  }

  function histogram(hist, opts) {
    opts = opts || {};
    const W = opts.width || 300, H = opts.height || 150, L = 34, B = 28, T = 8;
    const svg = frame(W, H);
    const counts = hist.counts || [], edges = hist.edges || [];
    if (!counts.length) { svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#888" }, "no data")); return svg; }
    const top = Math.max(...counts), bw = (W - L - 6) / counts.length;
    counts.forEach((c, i) => {
      const hh = c / top * (H - T - B);
      svg.append(s("rect", { x: L + i * bw, y: H - B - hh, width: Math.max(1, bw - 1), height: hh, fill: "#3b7dd8" }, ""));
    });
    svg.append(s("text", { x: L - 4, y: T + 8, "text-anchor": "end", "font-size": 10 }, String(top)));
    svg.append(s("text", { x: L, y: H - B + 12, "font-size": 10 }, fmt(edges[0])));
    svg.append(s("text", { x: W - 6, y: H - B + 12, "text-anchor": "end", "font-size": 10 }, fmt(edges[edges.length - 1])));
    svg.append(s("text", { x: W / 2, y: H - 4, "text-anchor": "middle", "font-size": 11 }, opts.xlabel || ""));
    return svg;
  }
  return { line, bars, histogram };
})();
