// The Anthill web console: a page over the admin API, nothing more. It holds
// the token in sessionStorage (gone with the tab), polls the API every two
// seconds, follows module output with the API's long poll, and draws the
// charts from /metrics itself. No framework, no external asset.
"use strict";

const REFRESH_MS = 2000;
const POINTS = 60;
const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("anthill.token") || "", refreshes: 0, logAfter: 0, last: null, series: {} };
window.anthillConsole = state;

class ApiError extends Error {
  constructor(status, kind, detail) { super(`${kind}: ${detail}`); this.status = status; this.kind = kind; }
}

async function api(method, path, body) {
  const res = await fetch(path, { method, body, headers: { Authorization: `Bearer ${state.token}` } });
  const text = await res.text();
  if (!res.ok) {
    let e = { error: `http-${res.status}`, detail: text };
    try { e = JSON.parse(text); } catch (_) { /* not JSON: keep the text */ }
    throw new ApiError(res.status, e.error, e.detail);
  }
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? JSON.parse(text || "null") : text;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function button(label, action, module, run) {
  return el("button", { dataset: { action, module }, onclick: async (ev) => {
    ev.target.disabled = true;
    try { await run(); $("modules-error").textContent = ""; }
    catch (e) { $("modules-error").textContent = `${action} ${module}: ${e.message}`; }
    finally { ev.target.disabled = false; refresh(); }
  } }, label);
}

// --- login -----------------------------------------------------------------

async function login(token) {
  state.token = token;
  await api("GET", "/v1/modules");
  sessionStorage.setItem("anthill.token", token);
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  refresh();
  followLogs();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try { await login($("token").value.trim()); $("login-error").textContent = ""; }
  catch (e) { $("login-error").textContent = e.status === 401 ? "That token is not accepted by this node." : e.message; }
});
$("logout").addEventListener("click", () => { sessionStorage.removeItem("anthill.token"); location.reload(); });

// --- modules -----------------------------------------------------------------

function renderModules(modules) {
  const body = $("modules").tBodies[0];
  body.replaceChildren(...modules.map((m) => {
    const canary = m.canary ? el("span", { className: "canary" }, `v${m.canary.version} on ${m.canary.percent}% of keys`) : "—";
    const perVersion = Object.entries(m.actors_per_version || {}).map(([v, n]) => `v${v}: ${n}`).join(", ");
    const actions = el("td");
    if (m.canary) actions.append(button("Promote", "promote", m.name, () => api("POST", `/v1/modules/${m.name}/promote`)));
    if (m.canary || m.versions.length > 1) actions.append(button("Roll back", "rollback", m.name, () => api("POST", `/v1/modules/${m.name}/rollback`)));
    actions.append(button("Undeploy", "undeploy", m.name, async () => {
      if (confirm(`Undeploy ${m.name}? Its actors stop and their state is deleted.`)) await api("DELETE", `/v1/modules/${m.name}`);
    }));
    return el("tr", { dataset: { module: m.name } },
      el("td", {}, m.name), el("td", {}, m.kind), el("td", {}, `v${m.version}`),
      el("td", {}, `${m.live_actors}${perVersion ? ` (${perVersion})` : ""}`), el("td", {}, canary),
      el("td", {}, m.versions.map((v) => `v${v.version}`).join(" ")), actions);
  }));
}

$("deploy-canary").addEventListener("input", () => {
  const p = Number($("deploy-canary").value);
  $("deploy-canary-value").textContent = p ? `${p}% of keys` : "off";
});

$("deploy-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = $("deploy-name").value.trim();
  const file = $("deploy-file").files[0];
  const q = new URLSearchParams();
  if ($("deploy-kind").value) q.set("kind", $("deploy-kind").value);
  const canary = Number($("deploy-canary").value);
  if (canary) q.set("canary", String(canary));
  $("deploy-result").textContent = `uploading ${file.name} (${file.size} bytes)…`;
  try {
    const r = await api("PUT", `/v1/modules/${name}?${q}`, await file.arrayBuffer());
    $("deploy-result").textContent = r.unchanged ? `${name}: already running this component; nothing changed`
      : `${name}: version ${r.version}${canary ? ` as a canary on ${canary}% of keys` : ""}`;
  } catch (e) {
    $("deploy-result").textContent = `${name}: ${e.message}`;
  }
  refresh();
});

// --- dead letters --------------------------------------------------------------

function renderDeadLetters(letters) {
  $("dead-letters").tBodies[0].replaceChildren(...letters.map((d) => el("tr", {},
    el("td", {}, d.id), el("td", {}, d.topic), el("td", {}, d.subscriber), el("td", {}, d.attempts),
    el("td", {}, d.last_error),
    el("td", {}, button("Replay", "replay", String(d.id), () => api("POST", `/v1/dead-letters/${d.id}/replay`)),
      button("Delete", "discard", String(d.id), () => api("DELETE", `/v1/dead-letters/${d.id}`))))));
}

// --- metrics and charts ------------------------------------------------------

function parseMetrics(text) {
  const sums = { calls: 0, errors: 0, ticks: 0, players: 0, buckets: new Map() };
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-z_]+)(\{([^}]*)\})?\s+(\S+)/);
    if (!m) continue;
    const [, name, , labels = "", raw] = m;
    const v = Number(raw);
    if (name === "anthill_calls_total") sums.calls += v;
    else if (name === "anthill_call_errors_total") sums.errors += v;
    else if (name === "anthill_tick_seconds_count") sums.ticks += v;
    else if (name === "anthill_player_connections") sums.players += v;
    else if (name === "anthill_call_duration_seconds_bucket") {
      const le = (labels.match(/le="([^"]+)"/) || [])[1];
      sums.buckets.set(le, (sums.buckets.get(le) || 0) + v);
    }
  }
  return sums;
}

// The p99 of the calls between two scrapes: the upper bound of the first
// bucket holding 99% of them.
function p99(now, before) {
  const les = [...now.buckets.keys()].sort((a, b) => Number(a) - Number(b));
  const total = (now.buckets.get("+Inf") || 0) - (before.buckets.get("+Inf") || 0);
  if (total <= 0) return null;
  for (const le of les) {
    if ((now.buckets.get(le) - (before.buckets.get(le) || 0)) >= 0.99 * total) return Number(le);
  }
  return null;
}

function push(name, value) {
  const s = (state.series[name] ||= []);
  s.push(value);
  if (s.length > POINTS) s.shift();
}

function draw(name, format) {
  const canvas = $(`c-${name}`);
  const ctx = canvas.getContext("2d");
  const s = state.series[name] || [];
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const max = Math.max(1e-9, ...s.filter((v) => v !== null));
  ctx.strokeStyle = name === "errors" ? "#b3261e" : "#2f6fde";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  s.forEach((v, i) => {
    const x = (i / (POINTS - 1)) * canvas.width;
    const y = canvas.height - 4 - ((v || 0) / max) * (canvas.height - 8);
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  });
  ctx.stroke();
  const last = s[s.length - 1];
  $(`v-${name}`).textContent = last === null || last === undefined ? "–" : format(last);
}

function chart(text) {
  const now = { ...parseMetrics(text), at: performance.now() };
  const before = state.last;
  state.last = now;
  if (!before) return now;
  const secs = (now.at - before.at) / 1000;
  push("calls", (now.calls - before.calls) / secs);
  push("errors", (now.errors - before.errors) / secs);
  push("latency", p99(now, before));
  push("ticks", (now.ticks - before.ticks) / secs);
  draw("calls", (v) => v.toFixed(1));
  draw("errors", (v) => v.toFixed(2));
  draw("latency", (v) => (v >= 1 ? `≤ ${v} s` : `≤ ${(v * 1000).toFixed(v < 0.001 ? 3 : 1)} ms`));
  draw("ticks", (v) => v.toFixed(1));
  return now;
}

// --- the poll ------------------------------------------------------------------

async function optional(promise) {
  try { return await promise; } catch (e) { if (e.status === 403) return null; throw e; }
}

let refreshing = false;
async function refresh() {
  if (refreshing || !state.token) return;
  refreshing = true;
  try {
    const [modules, node, letters, metrics] = await Promise.all([
      api("GET", "/v1/modules"), optional(api("GET", "/v1/node")),
      optional(api("GET", "/v1/dead-letters")), optional(api("GET", "/metrics")),
    ]);
    renderModules(modules);
    if (letters) renderDeadLetters(letters);
    const sums = metrics ? chart(metrics) : null;
    if (node) $("node").textContent = `node ${node.version}`;
    const actors = modules.reduce((n, m) => n + m.live_actors, 0);
    $("summary").textContent = `${modules.length} modules · ${actors} live actors`
      + (sums ? ` · ${sums.players} connected players` : "") + (letters ? ` · ${letters.length} dead letters` : "");
    state.refreshes += 1;
  } catch (e) {
    if (e.status === 401) { sessionStorage.removeItem("anthill.token"); location.reload(); }
    $("modules-error").textContent = e.message;
  } finally {
    refreshing = false;
  }
}

// --- module output -------------------------------------------------------------

async function followLogs() {
  for (;;) {
    const q = new URLSearchParams({ after: String(state.logAfter), wait_ms: "20000", limit: "200" });
    const module = $("log-module").value.trim();
    if (module) q.set("module", module);
    try {
      const page = await api("GET", `/v1/logs?${q}`);
      state.logAfter = page.next;
      const log = $("log");
      for (const l of page.lines) {
        const at = new Date(l.ts_ms).toISOString().slice(11, 23);
        log.append(`${at} ${l.module}${l.key ? "/" + l.key : ""} v${l.version} ${l.stream}: ${l.text}\n`);
      }
      while (log.childNodes.length > 500) log.firstChild.remove();
      if (page.lines.length) log.scrollTop = log.scrollHeight;
    } catch (e) {
      await new Promise((r) => setTimeout(r, REFRESH_MS));
    }
  }
}
$("log-module").addEventListener("change", () => { state.logAfter = 0; $("log").textContent = ""; });

setInterval(refresh, REFRESH_MS);
if (state.token) login(state.token).catch(() => { sessionStorage.removeItem("anthill.token"); });
