// gantry web page, views: stack, boot, service, traffic, control and incidents, built with DOM calls (text is never parsed as markup).
import { state, act, read, notice, select, render as rerender, refreshFlags, refreshIngress, refreshStatus, loadLogTail } from "./app.js";
import { drawGraph, updateNode as paintNode, drawWaterfall, sparkline } from "./graph.js";

const $ = (id) => document.getElementById(id);
const KILL_SWITCHES = ["write_drain", "brownout", "emergency", "safe_mode"];

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function table(headers, rows) {
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows)));
}

const fmtMs = (ms) => (ms === null || ms === undefined) ? "–" : ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms";
const fmtBytes = (b) => (b === null || b === undefined) ? "–" : b >= 1 << 20 ? (b / (1 << 20)).toFixed(1) + " MiB" : (b / 1024).toFixed(0) + " KiB";
const services = () => (state.status ? state.status.services : []);

// ---- header ----

export function renderHeader() {
  const s = state.status;
  if (!s) return;
  const boot = $("boot");
  const phase = s.boot.phase === "decided" ? s.boot.outcome : "booting";
  boot.textContent = phase + (s.boot.duration_ms != null ? ` · ${fmtMs(s.boot.duration_ms)}` : "") + (s.shutting_down ? " · shutting down" : "");
  boot.className = "badge " + phase;
  $("file").textContent = s.file;
  fillSelect($("svc-select"), state.selected);
  fillSelect($("act-service"), $("act-service").value);
}

function fillSelect(sel, keep) {
  const names = services().map((x) => x.name);
  const have = [...sel.options].map((o) => o.value);
  if (have.join("\u0000") !== names.join("\u0000")) {
    sel.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
  }
  if (keep && names.includes(keep)) sel.value = keep;
}

// ---- stack ----

let graphNodes = new Map();
let graphKey = "";

function renderStack() {
  const legend = $("legend");
  if (!legend.childElementCount) {
    for (const [cls, text] of [["s-ok", "ready"], ["s-run", "starting"], ["s-warn", "unready / degraded"], ["s-bad", "failed"], ["s-idle", "pending / stopped"], ["crit", "critical path"]]) {
      legend.append(h("span", {}, h("i", { class: cls }), text));
    }
  }
  const list = services();
  // Redraw only when the set of services changes; states are painted in place.
  const key = list.map((s) => s.name).join("\u0000");
  if (key !== graphKey || !graphNodes.size) {
    const { root, nodes } = drawGraph(state.graph, list, (name) => select(name));
    $("graph").replaceChildren(root);
    graphNodes = nodes;
    graphKey = key;
    if (list.length) $("graph").setAttribute("data-drawn", String(list.length));
  } else {
    for (const s of list) updateNode(s);
  }
}

export function updateNode(s) {
  const node = graphNodes.get(s.name);
  if (node) paintNode(node, s);
}

// ---- boot ----

function renderBoot() {
  const s = state.status;
  if (!s) return;
  const crit = (state.graph && state.graph.critical_path) || [];
  $("boot-summary").textContent = s.boot.phase === "decided"
    ? `Outcome ${s.boot.outcome} in ${fmtMs(s.boot.duration_ms)}${s.boot.reason ? " — " + s.boot.reason : ""}. Critical chain: ${crit.join(" → ") || "–"}.`
    : "The boot is under way.";
  $("waterfall").replaceChildren(drawWaterfall(s.services, crit));
  const boots = [...state.boots].sort((a, b) => b.id - a.id).slice(0, 30);
  const durations = boots.map((b) => b.duration_ms).filter((d) => typeof d === "number");
  const rows = boots.map((b, i) => {
    // A regression: noticeably slower than the median of the boots before it.
    const before = boots.slice(i + 1).map((x) => x.duration_ms).filter((d) => typeof d === "number").sort((x, y) => x - y);
    const median = before.length ? before[Math.floor(before.length / 2)] : null;
    const slow = median !== null && typeof b.duration_ms === "number" && b.duration_ms > median * 1.25 && b.duration_ms - median > 50;
    return h("tr", {}, h("td", {}, String(b.id)), h("td", {}, b.started_at), h("td", {}, b.outcome || "–"),
      h("td", { class: slow ? "bad-text" : "" }, fmtMs(b.duration_ms) + (slow ? ` (regression: median ${fmtMs(median)})` : "")),
      h("td", {}, b.reason || ""));
  });
  $("boots").replaceChildren(durations.length || rows.length
    ? table(["#", "started", "outcome", "duration", "reason"], rows)
    : h("p", {}, "No boot recorded yet."));
}

// ---- service ----

let missionsCache = { at: 0, list: [] };

function renderService() {
  const list = services();
  if (!state.selected && list.length) state.selected = list[0].name;
  fillSelect($("svc-select"), state.selected);
  const s = list.find((x) => x.name === state.selected);
  const box = $("svc-detail");
  if (!s) { box.replaceChildren(h("p", {}, "No service selected.")); return; }
  const kv = (k, v) => h("div", {}, h("b", {}, k), v === null || v === undefined || v === "" ? "–" : String(v));
  const inst = state.ingress && state.ingress.instances
    ? state.ingress.instances.filter((i) => i.service === s.name || i.service === s.name.replace(/\.\d+$/, ""))
    : [];
  const probes = (state.probes.get(s.name) || []).slice().reverse();
  box.replaceChildren(
    h("h2", { id: "svc-title", "data-state": s.state }, `${s.name} — ${s.state}`),
    h("div", { class: "kv" },
      kv("kind", s.kind), kv("priority", s.priority), kv("pid", s.pid), kv("attempts", s.attempts), kv("restarts", s.restarts),
      kv("time to ready", fmtMs(s.time_to_ready_ms)), kv("uptime", fmtMs(s.uptime_ms)),
      kv("CPU", s.cpu_seconds == null ? null : s.cpu_seconds.toFixed(2) + " s"), kv("RSS", fmtBytes(s.rss_bytes)),
      kv("probe failures", s.probe_failures_total), kv("readiness lost", s.readiness_lost_total), kv("breaker", s.breaker),
      kv("switch", s.switch_detail || s.switch), kv("status", s.status_text), kv("last error", s.last_error)),
    h("h3", {}, "Recent probes"),
    probes.length
      ? table(["at (UTC)", "role", "result", "took", "message"], probes.map((p) => h("tr", {},
        h("td", { title: p.at }, String(p.at).slice(11, 23)), h("td", {}, p.role), h("td", { class: p.ok ? "ok-text" : "bad-text" }, p.ok ? "pass" : "fail"),
        h("td", {}, fmtMs(p.duration_ms)), h("td", {}, p.message))))
      : h("p", {}, "No probe result yet."),
    h("h3", {}, "Instances"),
    inst.length
      ? table(["id", "address", "ready", "breaker", "connections", "p99"], inst.map((i) => h("tr", {},
        h("td", {}, i.id), h("td", {}, i.addr), h("td", {}, i.ready ? (i.draining ? "draining" : "yes") : "no"),
        h("td", {}, i.breaker + (i.ejected ? " (ejected)" : "")), h("td", {}, String(i.connections)), h("td", {}, fmtMs(i.p99_ms)))))
      : h("p", {}, "Not behind the ingress (one process)."),
    h("h3", {}, "Missions"),
    h("div", { id: "svc-missions" }, missionList(s.name)),
  );
  if (Date.now() - missionsCache.at > 5000) {
    missionsCache.at = Date.now();
    read("/api/v1/missions").then((m) => {
      if (!m) return;
      missionsCache.list = m.missions || [];
      const el = $("svc-missions");
      if (el && state.selected === s.name) el.replaceChildren(missionList(s.name));
    });
  }
  renderLog();
  if (!state.logsLoaded.has(s.name)) {
    loadLogTail(s.name).then(() => { if (state.selected === s.name && state.view === "service") renderLog(); });
  }
}

function missionList(name) {
  const mine = missionsCache.list.filter((m) => m.service === name);
  if (!mine.length) return h("p", {}, "No open mission.");
  return table(["id", "check", "status", "what"], mine.map((m) => h("tr", {},
    h("td", {}, String(m.id)), h("td", {}, m.check || ""), h("td", {}, m.status || ""),
    h("td", {}, m.message || m.title || m.detail || JSON.stringify(m)))));
}

export function renderLog() {
  const pre = $("log");
  const lines = state.logs.get(state.selected) || [];
  const q = $("log-search").value.trim().toLowerCase();
  const shown = q ? lines.filter((l) => l.line.toLowerCase().includes(q)) : lines;
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  pre.replaceChildren(...shown.map((l) => h("span", { class: l.stream === "err" ? "err" : "" }, l.line + "\n")));
  if (!shown.length) pre.textContent = lines.length ? "(no line matches)" : "(no output yet)";
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

// ---- traffic ----

function renderTraffic() {
  const box = $("traffic");
  if (state.ingress === false) { box.replaceChildren(h("p", {}, "This stack has no [ingress].")); return; }
  const ing = state.ingress;
  if (!ing) { box.replaceChildren(h("p", {}, "Loading…")); return; }
  const mode = ing.mode && ing.mode.mode ? ing.mode.mode + (ing.mode.shed_percent != null ? ` (${ing.mode.shed_percent} % shed)` : "") : "normal";
  const cards = (ing.routes || []).map((r) => {
    const entry = state.traffic.get(r.name) || { points: [] };
    const last = entry.points[entry.points.length - 1] || {};
    const shed = Object.entries(r.shed || {}).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(", ");
    return h("div", { class: "card", "data-route": r.name },
      h("h3", {}, `${r.name} → ${r.service}`),
      h("p", {}, `rate ${(last.rate || 0).toFixed(1)} req/s · errors ${((last.err || 0) * 100).toFixed(1)} % · in flight ${r.in_flight}`),
      h("p", {}, `p50 ${fmtMs(r.p50_ms)} · p95 ${fmtMs(r.p95_ms)} · p99 ${fmtMs(r.p99_ms)}`),
      sparkline(entry.points, ["rate"]),
      sparkline(entry.points, ["p50", "p95", "p99"]),
      h("p", {}, `retries ${r.retries} · upstream errors ${r.upstream_errors}` + (shed ? ` · shed: ${shed}` : "")));
  });
  box.replaceChildren(
    h("p", {}, h("b", {}, "Mode in force: "), h("span", { id: "ingress-mode" }, mode), ing.open ? " · open" : " · closed (boot not GO)"),
    h("div", { class: "cards" }, cards.length ? cards : h("p", {}, "No route.")),
    h("p", { class: "tick" }, "Charts: requests per second (blue); p50 / p95 / p99 latency (green / amber / red), last " + 120 + " samples."));
}

// ---- control ----

function flagOf(key) {
  return state.flags && state.flags.flags ? state.flags.flags.find((f) => f.key === key) : null;
}

let controlKey = "";

function renderControl() {
  // Rebuilt only when the flags changed (the view refreshes every 2 s): what the operator is
  // typing in a reason or value field is kept across a rebuild.
  const key = JSON.stringify(state.flags);
  if (key === controlKey && $("switches").childElementCount) return;
  controlKey = key;
  const typed = new Map([...document.querySelectorAll("#view-control input[data-keep]")].map((i) => [i.dataset.keep, i.value]));
  buildControl();
  for (const i of document.querySelectorAll("#view-control input[data-keep]")) {
    if (typed.has(i.dataset.keep)) i.value = typed.get(i.dataset.keep);
  }
}

function buildControl() {
  const box = $("switches");
  const cards = KILL_SWITCHES.map((key) => {
    const f = flagOf(key);
    const on = !!(f && f.evaluation && f.evaluation.value === true);
    const o = f && f.override;
    const reason = h("input", { type: "text", placeholder: "reason", "aria-label": `reason for ${key}`, maxlength: 1000, "data-keep": `reason:${key}` });
    const until = h("input", { type: "text", placeholder: "expires (e.g. 30m, optional)", "aria-label": `expiry for ${key}`, "data-keep": `until:${key}` });
    const toggle = h("button", {
      type: "button", class: on ? "on" : "", "data-switch": key, "aria-pressed": on ? "true" : "false",
      onclick: () => confirmThen(`${on ? "Switch off" : "Switch on"} ${key}?`, async () => {
        const body = { value: !on, reason: reason.value.trim() || undefined, expires: until.value.trim() || undefined };
        const r = on && o ? await act("DELETE", `/api/v1/flags/${encodeURIComponent(key)}`, { reason: body.reason })
          : await act("PUT", `/api/v1/flags/${encodeURIComponent(key)}`, body);
        report(r, `${key} ${on ? "off" : "on"}`);
        // A reason goes with one action: cleared once it was used.
        if (!r.error) { reason.value = ""; until.value = ""; }
        await Promise.all([refreshFlags(), refreshIngress()]);
        rerender();
      }),
    }, on ? "Switch off" : "Switch on");
    return h("div", { class: "card" + (on ? " active" : ""), "data-flag": key, "data-on": on ? "true" : "false" },
      h("h3", {}, `${key}: ${on ? "ON" : "off"}`),
      o ? h("p", {}, `set by ${o.actor} at ${o.set_at}` + (o.reason ? `: ${o.reason}` : "") + (o.expires_at ? ` · until ${o.expires_at}` : "")) : h("p", {}, "no override"),
      reason, until, toggle);
  });
  box.replaceChildren(...cards);
  const flags = (state.flags && state.flags.flags ? state.flags.flags : []).filter((f) => !KILL_SWITCHES.includes(f.key));
  $("flags").replaceChildren(flags.length
    ? table(["flag", "value", "override (who, why, until)", ""], flags.map((f) => {
      const o = f.override;
      const value = h("input", { type: "text", placeholder: "JSON value", "aria-label": `new value for ${f.key}`, "data-keep": `value:${f.key}` });
      return h("tr", {},
        h("td", {}, f.key + (f.description ? ` — ${f.description}` : "")),
        h("td", {}, JSON.stringify(f.evaluation ? f.evaluation.value : null)),
        h("td", {}, o ? `${JSON.stringify(o.value)} by ${o.actor}${o.reason ? ": " + o.reason : ""}${o.expires_at ? " until " + o.expires_at : ""}` : "–"),
        h("td", {}, value,
          h("button", { type: "button", onclick: () => {
            let v;
            try { v = JSON.parse(value.value); } catch (_) { report({ error: "the value must be JSON (true, 3, \"text\")" }); return; }
            confirmThen(`Override ${f.key} with ${JSON.stringify(v)}?`, async () => {
              report(await act("PUT", `/api/v1/flags/${encodeURIComponent(f.key)}`, { value: v, reason: $("act-reason").value.trim() || undefined }), `${f.key} set`);
              await refreshFlags(); rerender();
            });
          } }, "Set"),
          o ? h("button", { type: "button", onclick: () => confirmThen(`Remove the override of ${f.key}?`, async () => {
            report(await act("DELETE", `/api/v1/flags/${encodeURIComponent(f.key)}`), `${f.key} unset`);
            await refreshFlags(); rerender();
          }) }, "Unset") : null));
    }))
    : h("p", {}, "No other flag."));
}

function report(r, what) {
  const out = $("action-result");
  if (r && r.error) {
    out.className = "result error";
    out.textContent = `${r.status === 401 || r.status === 403 ? "Refused" : "Failed"}: ${r.error}${r.hint ? " (" + r.hint + ")" : ""}`;
    notice(out.textContent, true);
  } else {
    out.className = "result ok";
    out.textContent = `${what}: ${(r && r.message) || "done"}`;
    notice("");
  }
}

function confirmThen(text, run) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  const done = () => {
    dialog.removeEventListener("close", done);
    if (dialog.returnValue === "ok") run();
  };
  dialog.returnValue = "";
  dialog.addEventListener("close", done);
  dialog.showModal();
  $("confirm-cancel").focus();
}

// ---- incidents ----

export async function loadIncidents() {
  const [inc, audit] = await Promise.all([read("/api/v1/incidents"), read("/api/v1/audit?limit=200")]);
  const list = inc ? inc.incidents || [] : [];
  $("incidents").replaceChildren(list.length
    ? table(["#", "severity", "title", "opened", "status", ""], list.map((i) => h("tr", {},
      h("td", {}, String(i.id)), h("td", {}, i.severity), h("td", {}, i.title), h("td", {}, i.opened_at),
      h("td", {}, i.status + (i.resolved_at ? ` (${i.resolved_at})` : "")),
      h("td", {}, h("button", { type: "button", class: "link", "data-incident": i.id, onclick: () => showIncident(i.id) }, "timeline"),
        ...(i.status === "open"
          ? [" ", h("button", { type: "button", class: "link", "data-incident-act": "ack", onclick: () => incidentAct(i.id, "ack") }, "ack")]
          : []),
        ...(i.status !== "resolved"
          ? [" ", h("button", { type: "button", class: "link", "data-incident-act": "resolve", onclick: () => incidentAct(i.id, "resolve") }, "resolve")]
          : [])))))
    : h("p", {}, "No incident."));
  // The incident shown stays current (its timeline grows while it is open).
  if (shownIncident !== null) showIncident(shownIncident);
  const rows = audit ? audit.audit || [] : [];
  $("audit").replaceChildren(rows.length
    ? table(["at", "who", "action", "target", "reason", "result"], rows.map((a) => h("tr", {},
      h("td", {}, a.at), h("td", {}, a.actor), h("td", {}, a.action), h("td", {}, a.target || ""),
      h("td", {}, a.reason || ""), h("td", {}, a.result || ""))))
    : h("p", {}, "The audit log is empty."));
}

let shownIncident = null;

// Acknowledge (someone is on it) or resolve an incident, after a confirmation; audited with who.
function incidentAct(id, action) {
  confirmThen(`${action} incident ${id}?`, async () => {
    const r = await act("POST", `/api/v1/incidents/${id}/${action}`);
    if (r && r.error) {
      notice(`${r.status === 401 || r.status === 403 ? "Refused" : "Failed"}: ${r.error}`, true);
    } else {
      notice("");
    }
    loadIncidents();
  });
}

async function showIncident(id) {
  const i = await read(`/api/v1/incidents/${id}`);
  if (!i) return;
  shownIncident = id;
  $("incident").replaceChildren(
    h("h3", {}, `Incident ${i.id}: ${i.title}`),
    table(["at", "kind", "what"], (i.timeline || []).map((t) => h("tr", {}, h("td", {}, t.at), h("td", {}, t.kind), h("td", {}, t.text)))),
    h("h3", {}, "Post-incident draft"),
    h("pre", { class: "draft" }, i.postmortem || ""));
}

// ---- wiring ----

export function wire() {
  $("svc-select").addEventListener("change", (ev) => { state.selected = ev.target.value; renderService(); });
  $("log-search").addEventListener("input", renderLog);
  for (const b of document.querySelectorAll("#actions [data-action]")) {
    b.addEventListener("click", () => {
      const name = $("act-service").value;
      const action = b.dataset.action;
      if (!name) return;
      const verb = action.replace("/", " ");
      confirmThen(`${verb} ${name}?`, async () => {
        const reason = $("act-reason").value.trim();
        const r = await act("POST", `/api/v1/services/${encodeURIComponent(name)}/${action}`, reason ? { reason } : undefined);
        report(r, `${verb} ${name}`);
        if (!r.error) $("act-reason").value = "";
        refreshStatus();
      });
    });
  }
}

export function render(view) {
  switch (view) {
    case "stack": renderStack(); break;
    case "boot": renderBoot(); break;
    case "service": renderService(); break;
    case "traffic": renderTraffic(); break;
    case "control": renderControl(); break;
    default: break;
  }
  // The graph is kept current even while another view shows (states painted in place).
  if (view !== "stack" && state.status) renderStack();
}
