// gantry web page, drawing: the dependency graph, the boot waterfall and small line charts, as SVG built with DOM calls (no markup strings).
const NS = "http://www.w3.org/2000/svg";
const NODE_W = 168, NODE_H = 40, COL_GAP = 56, ROW_GAP = 12, MAX_ROWS = 14, PAD = 16;

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/// The state's color class: ok, warn, bad, run or idle.
export function stateClass(state) {
  switch (state) {
    case "ready": case "running": case "completed": return "s-ok";
    case "unready": case "degraded": case "stopping": return "s-warn";
    case "failed": return "s-bad";
    case "starting": return "s-run";
    default: return "s-idle";
  }
}

function subline(s) {
  const parts = [s.state];
  parts.push(s.ready ? "gate ✓" : "gate …");
  if (s.restarts) parts.push(`↻${s.restarts}`);
  if (s.breaker && s.breaker !== "closed") parts.push(`breaker ${s.breaker}`);
  if (s.switch) parts.push(s.switch);
  return parts.join(" · ");
}

/// Lays the plan out by start wave (columns, a tall wave split into several), edges from each
/// dependency to its dependent, the critical path in its own color. Returns the SVG and a map
/// service -> node group for live updates.
export function drawGraph(graph, services, onOpen) {
  const byName = new Map(services.map((s) => [s.name, s]));
  const waves = (graph && graph.waves && graph.waves.length) ? graph.waves : [services.map((s) => s.name)];
  const crit = new Set((graph && graph.critical_path) || []);
  const critEdges = new Set();
  const cp = (graph && graph.critical_path) || [];
  for (let i = 1; i < cp.length; i++) critEdges.add(cp[i - 1] + "\u0000" + cp[i]);
  const pos = new Map();
  let col = 0, maxRows = 0;
  const waveLabels = [];
  waves.forEach((wave, wi) => {
    const cols = Math.max(1, Math.ceil(wave.length / MAX_ROWS));
    const rows = Math.ceil(wave.length / cols);
    waveLabels.push({ x: PAD + col * (NODE_W + COL_GAP), text: `wave ${wi + 1}` });
    wave.forEach((name, i) => {
      const c = col + Math.floor(i / rows), r = i % rows;
      pos.set(name, { x: PAD + c * (NODE_W + COL_GAP), y: PAD + 18 + r * (NODE_H + ROW_GAP) });
    });
    col += cols;
    maxRows = Math.max(maxRows, rows);
  });
  // Services the graph does not know (not expected, but never drop one): a last column.
  const extra = services.filter((s) => !pos.has(s.name));
  extra.forEach((s, i) => pos.set(s.name, { x: PAD + col * (NODE_W + COL_GAP), y: PAD + 18 + i * (NODE_H + ROW_GAP) }));
  if (extra.length) { col += 1; maxRows = Math.max(maxRows, extra.length); }
  const width = PAD * 2 + col * (NODE_W + COL_GAP) - COL_GAP;
  const height = PAD * 2 + 18 + maxRows * (NODE_H + ROW_GAP);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "dependency graph" });
  for (const w of waveLabels) root.append(svg("text", { x: w.x, y: PAD + 6, class: "layer-label" }, w.text));
  const edges = svg("g");
  root.append(edges);
  for (const node of (graph && graph.services) || []) {
    const to = pos.get(node.name);
    if (!to) continue;
    for (const dep of node.depends_on || []) {
      const from = pos.get(dep.name);
      if (!from) continue;
      const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x, y2 = to.y + NODE_H / 2;
      const mx = (x1 + x2) / 2;
      let cls = "edge";
      if (!dep.required) cls += " soft";
      if (critEdges.has(dep.name + "\u0000" + node.name)) cls += " crit";
      edges.append(svg("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: cls }));
    }
  }
  const layerOf = new Map(((graph && graph.services) || []).map((n) => [n.name, n.layer]));
  const nodes = new Map();
  for (const s of services) {
    const p = pos.get(s.name);
    const layer = layerOf.get(s.name);
    const title = svg("title", {}, `${s.name}: ${s.state}${layer ? " (layer " + layer + ")" : ""}`);
    const rect = svg("rect", { width: NODE_W, height: NODE_H, rx: 6, class: stateClass(s.state) });
    const name = svg("text", { x: 8, y: 16 }, s.name + (layer ? `  [${layer}]` : ""));
    const sub = svg("text", { x: 8, y: 32, class: "sub" }, subline(s));
    const g = svg("g", {
      class: "node" + (crit.has(s.name) ? " crit" : ""),
      transform: `translate(${p.x},${p.y})`,
      tabindex: 0, role: "button",
      "data-service": s.name, "data-state": s.state,
      "aria-label": `${s.name}, ${s.state}`,
    }, title, rect, name, sub);
    g.addEventListener("click", () => onOpen(s.name));
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onOpen(s.name); } });
    root.append(g);
    nodes.set(s.name, { g, rect, sub, title, name: s.name, layer });
  }
  return { root, nodes };
}

/// Updates one node in place (a transition from the live stream), without redrawing the graph.
export function updateNode(node, s) {
  node.rect.setAttribute("class", stateClass(s.state));
  node.sub.textContent = subline(s);
  node.g.setAttribute("data-state", s.state);
  node.g.setAttribute("aria-label", `${s.name}, ${s.state}`);
  node.title.textContent = `${s.name}: ${s.state}${node.layer ? " (layer " + node.layer + ")" : ""}`;
}

/// The boot as a waterfall: per service a bar from its first spawn to ready (ms since the boot
/// began), failed ones in red, the critical chain outlined.
export function drawWaterfall(services, critical) {
  const rows = services.filter((s) => s.started_ms !== null && s.started_ms !== undefined)
    .sort((a, b) => a.started_ms - b.started_ms);
  const crit = new Set(critical || []);
  const end = Math.max(1, ...rows.map((s) => s.ready_ms ?? s.started_ms));
  const LABEL = 150, W = 620, ROW = 20;
  const width = LABEL + W + PAD * 2 + 48, height = PAD * 2 + 20 + rows.length * ROW;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "boot waterfall" });
  const scale = (ms) => LABEL + PAD + (ms / end) * W;
  for (let i = 0; i <= 4; i++) {
    const ms = (end * i) / 4, x = scale(ms);
    root.append(svg("line", { x1: x, x2: x, y1: PAD, y2: height - PAD, class: "axis" }));
    root.append(svg("text", { x: x + 2, y: PAD + 8, class: "tick" }, `${Math.round(ms)} ms`));
  }
  rows.forEach((s, i) => {
    const y = PAD + 20 + i * ROW;
    root.append(svg("text", { x: PAD, y: y + 12, class: "tick" }, s.name));
    const start = s.started_ms, ready = s.ready_ms;
    const stop = ready ?? start;
    const cls = s.state === "failed" ? "bar-fail" : ready !== null && ready !== undefined ? "bar-ready" : "bar-start";
    const bar = svg("rect", {
      x: scale(start), y: y + 2, height: ROW - 6, rx: 2,
      width: Math.max(2, scale(stop) - scale(start)),
      class: cls + (crit.has(s.name) ? " bar-crit" : ""),
    }, svg("title", {}, `${s.name}: spawned at ${start} ms` + (ready != null ? `, ready at ${ready} ms (${s.time_to_ready_ms} ms)` : `, ${s.state}`)));
    root.append(bar);
  });
  return root;
}

/// A small line chart of the last points: one path per series, scaled to the largest value.
export function sparkline(points, series, w = 260, h = 56) {
  const root = svg("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: "spark", role: "img" });
  let max = 0;
  for (const p of points) for (const k of series) if (typeof p[k] === "number") max = Math.max(max, p[k]);
  if (!max) max = 1;
  for (const k of series) {
    let d = "";
    points.forEach((p, i) => {
      if (typeof p[k] !== "number") return;
      const x = points.length > 1 ? (i / (points.length - 1)) * (w - 4) + 2 : 2;
      const y = h - 2 - (p[k] / max) * (h - 4);
      d += (d ? " L" : "M") + x.toFixed(1) + "," + y.toFixed(1);
    });
    if (d) root.append(svg("path", { d, class: k }));
  }
  root.append(svg("title", {}, `max ${max.toFixed(2)}`));
  return root;
}
