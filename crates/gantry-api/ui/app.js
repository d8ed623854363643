// gantry web page, entry module: state, API calls (session cookie + CSRF header), the live event stream with backoff, tabs.
import * as views from "./views.js";

const LOG_LINES = 400;          // per service: the log tail keeps a fixed window
const PROBE_HISTORY = 20;       // per service: recent probe results
const TRAFFIC_POINTS = 120;     // per route: chart window
const STREAM_EVENTS = ["transition", "output", "boot", "finished", "alert", "ingress_mode", "reloaded",
  "remediated", "rollout", "output_dropped", "revalidated", "lagged", "audit_failed"];

export const state = {
  session: null,          // {actor, role, csrf}
  protectReads: false,
  status: null,
  graph: null,
  boots: [],
  ingress: null,
  traffic: new Map(),     // route -> {last, points: [{t, rate, err, p50, p95, p99}]}
  logs: new Map(),        // service -> [{stream, line}]
  logsLoaded: new Set(),  // services whose file tail was read (then the stream keeps them current)
  probes: new Map(),      // service -> [{role, ok, message, duration_ms, at}]
  flags: null,
  view: "stack",
  selected: null,
};

const $ = (id) => document.getElementById(id);

export function notice(text, error = false) {
  const n = $("notice");
  n.textContent = text || "";
  n.hidden = !text;
  n.classList.toggle("error", !!error);
}

/// A JSON call to the API. Mutations carry the session's CSRF token; errors come back as
/// {error, hint, status} (never thrown for an HTTP answer).
export async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (state.session) headers["X-Gantry-CSRF"] = state.session.csrf;
  }
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    return { error: "gantry is not reachable", hint: String(e), status: 0 };
  }
  let json = null;
  try { json = await res.json(); } catch (_) { json = null; }
  if (!res.ok) {
    const err = json && json.error ? json : { error: res.statusText || "error" };
    return { ...err, status: res.status };
  }
  return json || {};
}

/// A read; a 401 says to sign in (reads are protected when the API is reachable beyond loopback).
const PROTECTED = ["/api/v1/missions", "/api/v1/audit", "/api/v1/flags", "/api/v1/incidents", "/api/v1/events"];

async function read(path) {
  if (state.protectReads && !state.session && (PROTECTED.some((p) => path.startsWith(p)) || path.includes("/logs"))) {
    notice("Reading this needs a token: sign in with the read or operator token.", true);
    return null;
  }
  const r = await api("GET", path);
  if (r.status === 401) {
    notice("Reading this needs a token: sign in with the read or operator token.", true);
    return null;
  }
  if (r.status !== undefined && r.error) return null;
  return r;
}

export async function act(method, path, body) {
  if (!state.session) {
    return { error: "no session — sign in with the operator token to act", status: 401 };
  }
  if (state.session.role !== "operator") {
    return { error: `${state.session.actor} may only read — sign in with the operator token`, status: 403 };
  }
  const r = await api(method, path, body);
  // The session ended (expired, or a new gantry): show the sign-in form again.
  if (r.status === 401) loadSession();
  return r;
}

// ---- session ----

async function loadSession() {
  const s = await api("GET", "/api/v1/session");
  state.session = s && s.session ? s.session : null;
  state.protectReads = !!(s && s.protect_reads);
  state.hasIngress = !!(s && s.ingress);
  showSession();
}

function showSession() {
  const who = $("who");
  $("login").hidden = !!state.session;
  who.hidden = !state.session;
  $("logout").hidden = !state.session;
  who.textContent = state.session ? `${state.session.actor} (${state.session.role})` : "";
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $("token-input");
  const token = input.value.trim();
  input.value = "";
  if (!token) return;
  let res;
  try {
    res = await fetch("/api/v1/session", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Authorization": "Bearer " + token, "Accept": "application/json" },
    });
  } catch (e) {
    notice("gantry is not reachable", true);
    return;
  }
  const json = await res.json().catch(() => null);
  if (!res.ok || !json || !json.session) {
    notice("Sign-in refused: " + ((json && json.error) || res.statusText), true);
    return;
  }
  state.session = json.session;
  state.protectReads = !!json.protect_reads;
  state.hasIngress = !!json.ingress;
  showSession();
  notice(`Signed in as ${state.session.actor} (${state.session.role}).`);
  refreshAll();
  connect();
}

async function signOut() {
  await api("DELETE", "/api/v1/session");
  state.session = null;
  showSession();
  notice("Signed out.");
}

// ---- data ----

function keepProbe(svc) {
  const p = svc.last_probe;
  if (!p) return;
  const list = state.probes.get(svc.name) || [];
  if (list.length && list[list.length - 1].at === p.at && list[list.length - 1].role === p.role) return;
  list.push(p);
  while (list.length > PROBE_HISTORY) list.shift();
  state.probes.set(svc.name, list);
}

// The last transition the event stream brought per service, and when it arrived: a status
// answer asked for before it is older than it and must not paint the service back.
const lastTransition = new Map();

export async function refreshStatus() {
  const asked = performance.now();
  applyStatus(await read("/api/v1/status"), asked);
}

function applyStatus(s, asked) {
  if (!s) return;
  for (const svc of s.services) {
    const t = lastTransition.get(svc.name);
    if (t && t.at > asked) {
      svc.state = t.to;
      svc.ready = ["ready", "running", "completed"].includes(t.to);
    }
  }
  state.status = s;
  for (const svc of s.services) keepProbe(svc);
  // Forget buffers of services that no longer exist (bounded memory across reloads of the stack).
  const names = new Set(s.services.map((x) => x.name));
  for (const k of [...state.logs.keys()]) if (!names.has(k)) state.logs.delete(k);
  for (const k of [...state.probes.keys()]) if (!names.has(k)) state.probes.delete(k);
  for (const k of [...state.logsLoaded]) if (!names.has(k)) state.logsLoaded.delete(k);
  views.renderHeader();
  render();
}

async function refreshGraph() {
  const g = await read("/api/v1/graph");
  if (g) state.graph = g;
}

async function refreshBoots() {
  const b = await read("/api/v1/boots");
  if (b) state.boots = b.boots || [];
}

export async function refreshIngress() {
  if (!state.hasIngress) { state.ingress = false; return; }
  const r = await api("GET", "/api/v1/ingress");
  if (r.status === 404) { state.ingress = false; return; }
  if (r.error) return;
  state.ingress = r;
  const now = Date.now();
  for (const route of r.routes || []) {
    const entry = state.traffic.get(route.name) || { last: null, points: [] };
    const total = sumClasses(route.requests);
    const errors = (route.requests && route.requests["5xx"]) || 0;
    if (entry.last) {
      const dt = Math.max((now - entry.last.t) / 1000, 0.001);
      const dn = Math.max(total - entry.last.total, 0);
      const de = Math.max(errors - entry.last.errors, 0);
      entry.points.push({ t: now, rate: dn / dt, err: dn ? de / dn : 0, p50: route.p50_ms, p95: route.p95_ms, p99: route.p99_ms });
      while (entry.points.length > TRAFFIC_POINTS) entry.points.shift();
    }
    entry.last = { t: now, total, errors };
    state.traffic.set(route.name, entry);
  }
}

function sumClasses(requests) {
  if (!requests || typeof requests !== "object") return 0;
  return Object.values(requests).reduce((a, b) => a + (typeof b === "number" ? b : 0), 0);
}

export { read };

/// Fills a service's log window with the last lines of its file, once. gantry writes the file
/// every 250 ms, so lines that came on the stream may not be in it yet: streamed lines are kept
/// after the file's, except those the end of the file already has (same stream and text).
export async function loadLogTail(name) {
  if (state.logsLoaded.has(name)) return;
  state.logsLoaded.add(name);
  const r = await read(`/api/v1/services/${encodeURIComponent(name)}/logs?tail=${LOG_LINES}`);
  if (!r) { state.logsLoaded.delete(name); return; }
  const file = (r.lines || []).map((l) => ({ stream: l.stream, line: String(l.line) }));
  const streamed = state.logs.get(name) || [];
  const tailKeys = new Set(file.slice(-(streamed.length + 1)).map((l) => l.stream + "\u0000" + l.line));
  const merged = file.concat(streamed.filter((l) => !tailKeys.has(l.stream + "\u0000" + l.line)));
  while (merged.length > LOG_LINES) merged.shift();
  state.logs.set(name, merged);
}

export async function refreshFlags() {
  const f = await read("/api/v1/flags");
  if (f) state.flags = f;
}

async function refreshAll() {
  // Everything at once; the views are drawn once the graph and the status are both in.
  const asked = performance.now();
  const status = read("/api/v1/status");
  await Promise.all([refreshGraph(), refreshBoots(), refreshIngress()]);
  applyStatus(await status, asked);
}

// ---- live stream ----

let source = null;
let backoff = 1000;
let opens = 0;
let reconnectTimer = null;
let statusTimer = null;

// A burst of lines is drawn once per frame, not once per line.
let logFrame = null;
function scheduleLog() {
  if (logFrame !== null) return;
  logFrame = requestAnimationFrame(() => { logFrame = null; views.renderLog(); });
}

function scheduleStatus() {
  if (statusTimer) return;
  statusTimer = setTimeout(() => { statusTimer = null; refreshStatus(); }, 150);
}

function setConn(text, cls) {
  const c = $("conn");
  c.textContent = text;
  c.className = "badge " + cls;
}

function connect() {
  if (source) { source.close(); source = null; }
  clearTimeout(reconnectTimer);
  if (state.protectReads && !state.session) {
    setConn("sign in for live", "conn-off");
    return;
  }
  const es = new EventSource("/api/v1/events", { withCredentials: true });
  source = es;
  es.onopen = () => {
    backoff = 1000;
    setConn("live", "conn-on");
    opens += 1;
    $("conn").dataset.opens = String(opens);
    // Whatever happened while disconnected: read the state again. After a reconnect the gantry
    // may be a new one, whose memory holds no session: ask again who we are first.
    if (opens > 1) loadSession().then(refreshAll);
    else refreshAll();
  };
  es.onerror = () => {
    es.close();
    if (source !== es) return;
    source = null;
    setConn(`reconnecting in ${Math.round(backoff / 1000)} s`, "conn-retry");
    // No stream yet (say, every stream slot is taken): show the state read once meanwhile.
    if (!state.status) refreshAll();
    reconnectTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 30000);
  };
  for (const name of STREAM_EVENTS) {
    es.addEventListener(name, (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch (_) { return; }
      onEvent(name, data);
    });
  }
}

function onEvent(name, data) {
  switch (name) {
    case "transition": {
      lastTransition.set(data.service, { to: data.to, at: performance.now() });
      if (lastTransition.size > 10000) lastTransition.clear();
      const svc = state.status && state.status.services.find((s) => s.name === data.service);
      if (svc) {
        svc.state = data.to;
        svc.ready = ["ready", "running", "completed"].includes(data.to);
        views.updateNode(svc);
      }
      scheduleStatus();
      break;
    }
    case "output": {
      const list = state.logs.get(data.service) || [];
      list.push({ stream: data.stream, line: String(data.line) });
      while (list.length > LOG_LINES) list.shift();
      state.logs.set(data.service, list);
      if (state.view === "service" && state.selected === data.service) scheduleLog();
      break;
    }
    case "boot":
    case "finished":
    case "reloaded":
      refreshBoots().then(refreshStatus);
      break;
    case "alert":
      // A P0/P1 alert opens or resolves an incident.
      if (state.view === "incidents") views.loadIncidents();
      scheduleStatus();
      break;
    case "ingress_mode":
      refreshIngress().then(render);
      break;
    case "lagged":
      refreshStatus();
      break;
    default:
      scheduleStatus();
  }
}

// ---- views ----

export function render() {
  views.render(state.view);
}

export function show(view, focus = false) {
  state.view = view;
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const on = tab.dataset.view === view;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    if (on && focus) tab.focus();
  }
  for (const panel of document.querySelectorAll("[role=tabpanel]")) {
    panel.hidden = panel.id !== "view-" + view;
  }
  if (view === "traffic") refreshIngress().then(render);
  else if (view === "control") Promise.all([refreshFlags(), refreshIngress()]).then(render);
  else if (view === "incidents") views.loadIncidents();
  else if (view === "boot") refreshBoots().then(render);
  else render();
}

export function select(name) {
  state.selected = name;
  show("service", true);
}

function tabKeys(ev) {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  const i = tabs.indexOf(document.activeElement);
  if (i < 0) return;
  let j = null;
  if (ev.key === "ArrowRight") j = (i + 1) % tabs.length;
  else if (ev.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
  else if (ev.key === "Home") j = 0;
  else if (ev.key === "End") j = tabs.length - 1;
  if (j === null) return;
  ev.preventDefault();
  show(tabs[j].dataset.view, true);
}

async function start() {
  $("login").addEventListener("submit", signIn);
  $("logout").addEventListener("click", signOut);
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => show(tab.dataset.view));
  }
  document.querySelector(".tabs").addEventListener("keydown", tabKeys);
  views.wire();
  show("stack");
  await loadSession();
  // The stream first, so nothing between the first read and the subscription is missed: its
  // opening reads everything (without a stream, e.g. reads need a session, read once here).
  connect();
  if (!source) await refreshAll();
  // CPU/RSS and probe figures change without events: a slow poll while the page is visible.
  setInterval(() => {
    if (document.hidden) return;
    refreshStatus();
    if (state.view === "incidents") views.loadIncidents();
  }, 5000);
  setInterval(() => {
    if (!document.hidden && state.ingress !== false && (state.view === "traffic" || state.view === "control")) {
      refreshIngress().then(render);
    }
  }, 2000);
}

start();
