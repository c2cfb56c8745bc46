// The console: one page over the public API, nothing else. Every panel reads the same endpoints a
// script would (see /openapi.json); the live table follows /v1/events/stream; the charts read the
// pre-aggregated /v1/stats. With `api_token` set, the first 401 asks for the token once and keeps it
// for the browser session.
"use strict";

const FUELS = ["solar", "wind", "hydro", "nuclear", "coal", "gas", "oil", "biomass", "geothermal", "storage", "other"];
const STATUSES = ["planned", "operational", "maintenance", "offline", "decommissioned"];
const REFRESH_MS = 5000;
const STREAM_ROWS = 200;
const PLUGIN_SAMPLES = 120;

const $ = (selector) => document.querySelector(selector);

// ---- HTTP -------------------------------------------------------------------------------------

class Problem extends Error {
  constructor(status, body) {
    super(body && body.detail ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

let token = sessionStorage.getItem("plant-monitor-token");
let askedForToken = false;

async function api(method, path, { body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = init.headers["Content-Type"] || "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && !askedForToken) {
    askedForToken = true;
    if (askForToken()) return api(method, path, { body, headers, raw });
  }
  if (raw) return response;
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Problem(response.status, parsed);
  return { body: parsed, headers: response.headers };
}

function askForToken() {
  const given = window.prompt("This server needs its API token (server.api_token):");
  if (!given) return false;
  token = given.trim();
  sessionStorage.setItem("plant-monitor-token", token);
  $("#token-button").hidden = false;
  return true;
}

function notice(message) {
  const box = $("#notice");
  box.textContent = message || "";
  box.hidden = !message;
}

// ---- small DOM helpers --------------------------------------------------------------------------

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  if (td.textContent.length > 24) td.title = td.textContent;
  return td;
}

function badge(text, tone) {
  const span = document.createElement("span");
  span.className = `badge ${tone || ""}`;
  span.textContent = text;
  return span;
}

function button(label, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    if (c instanceof Node && c.nodeName === "TD") tr.append(c);
    else {
      const td = document.createElement("td");
      if (c instanceof Node) td.append(c);
      tr.append(td);
    }
  }
  return tr;
}

function fillOptions(select, words) {
  for (const word of words) {
    const option = document.createElement("option");
    option.value = option.textContent = word;
    select.append(option);
  }
}

function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

function short(hash) {
  return hash ? hash.slice(0, 12) : "";
}

function formQuery(form) {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (String(value).trim()) params.set(key, String(value).trim());
  return params;
}

// ---- plants -------------------------------------------------------------------------------------

const plants = { next: null, editing: null, appended: false };

async function loadPlants(append = false) {
  const params = formQuery($("#plant-filter"));
  params.set("limit", "50");
  if (append && plants.next) params.set("after", plants.next);
  try {
    const { body } = await api("GET", `/v1/plants?${params}`);
    const rows = $("#plant-rows");
    if (!append) rows.replaceChildren();
    for (const plant of body.items) rows.append(plantRow(plant));
    plants.next = body.next;
    plants.appended = append;
    $("#plant-more").hidden = !body.next;
  } catch (error) {
    notice(`Plants: ${error.message}`);
  }
}

function plantRow(plant) {
  const tr = row([
    cell(plant.name),
    cell(plant.region),
    cell(plant.fuel),
    cell(plant.capacity_mw, "num"),
    cell(plant.output_mw, "num"),
    badge(plant.status, plant.status === "operational" ? "good" : plant.status === "offline" ? "bad" : ""),
    cell(plant.version, "num"),
    actions(plant),
  ]);
  tr.dataset.id = plant.id;
  return tr;
}

function actions(plant) {
  const span = document.createElement("span");
  span.append(button("Edit", () => openPlantForm(plant)), " ",
    button("Delete", () => deletePlant(plant), "danger"));
  return span;
}

// The plant list follows the stream: a change reloads it, at most once a second.
let reloadPending = null;
function plantsChanged() {
  if (reloadPending || plants.appended) return;
  reloadPending = setTimeout(() => { reloadPending = null; loadPlants(); }, 1000);
}

function openPlantForm(plant) {
  const form = $("#plant-form");
  form.reset();
  clearProblem();
  plants.editing = plant || null;
  $("#plant-form-title").textContent = plant ? `Edit ${plant.name} (version ${plant.version})` : "New plant";
  const values = plant || { status: "planned", attributes: {} };
  for (const name of ["name", "region", "fuel", "status", "capacity_mw", "output_mw", "latitude", "longitude"]) {
    form.elements[name].value = values[name] ?? "";
  }
  form.elements.attributes.value = JSON.stringify(values.attributes || {});
  $("#plant-dialog").showModal();
}

function plantBody(form) {
  const number = (name) => (form.elements[name].value === "" ? null : Number(form.elements[name].value));
  let attributes;
  try {
    attributes = JSON.parse(form.elements.attributes.value || "{}");
  } catch {
    attributes = form.elements.attributes.value; // the server names the field and says why
  }
  return {
    name: form.elements.name.value,
    region: form.elements.region.value,
    fuel: form.elements.fuel.value,
    status: form.elements.status.value,
    capacity_mw: number("capacity_mw"),
    output_mw: number("output_mw"),
    latitude: number("latitude"),
    longitude: number("longitude"),
    attributes,
  };
}

async function savePlant(event) {
  event.preventDefault();
  const form = $("#plant-form");
  clearProblem();
  const editing = plants.editing;
  try {
    if (editing) {
      await api("PUT", `/v1/plants/${encodeURIComponent(editing.id)}`, {
        body: plantBody(form),
        headers: { "If-Match": `"${editing.version}"` },
      });
    } else {
      await api("POST", "/v1/plants", { body: plantBody(form) });
    }
    $("#plant-dialog").close();
    loadPlants();
  } catch (error) {
    showProblem(error);
  }
}

async function deletePlant(plant) {
  if (!window.confirm(`Delete ${plant.name}? Its history stays in the journal.`)) return;
  try {
    await api("DELETE", `/v1/plants/${encodeURIComponent(plant.id)}`, {
      headers: { "If-Match": `"${plant.version}"` },
    });
    notice("");
  } catch (error) {
    notice(error.status === 412
      ? `${plant.name} changed since this list was loaded (412 Precondition Failed): reload and try again.`
      : `Delete failed: ${error.message}`);
  }
  loadPlants();
}

function clearProblem() {
  const box = $("#plant-form-problem");
  box.hidden = true;
  box.textContent = "";
  for (const element of $("#plant-form").querySelectorAll(".invalid")) element.classList.remove("invalid");
  for (const element of $("#plant-form").querySelectorAll(".field-error")) element.remove();
}

function showProblem(error) {
  const box = $("#plant-form-problem");
  box.hidden = false;
  if (error.status === 412) {
    box.textContent = "412 Precondition Failed: someone else changed this plant since you opened it.\n"
      + `${error.message}\nClose the form and open the plant again to edit its current version.`;
  } else if (error.status === 422) {
    box.textContent = "422 Unprocessable: the plant is not valid; see the fields marked below.";
    const form = $("#plant-form");
    for (const { field, message } of error.body.errors || []) {
      const input = form.elements[field];
      const note = document.createElement("span");
      note.className = "field-error";
      note.textContent = message;
      if (input) {
        input.classList.add("invalid");
        input.after(note);
      } else {
        box.textContent += `\n${field}: ${message}`;
      }
    }
  } else {
    box.textContent = `${error.status || ""} ${error.message}`;
  }
}

// ---- live stream --------------------------------------------------------------------------------

// The stream is read with fetch rather than EventSource, so that it can carry the Authorization
// header (EventSource cannot) and resume with Last-Event-ID after a drop, as EventSource would.
const stream = { controller: null, paused: false, lastId: null, rows: new Map() };

function connectStream() {
  if (stream.controller) stream.controller.abort();
  const controller = new AbortController();
  stream.controller = controller;
  const query = formQuery($("#stream-filter"));
  readStream(`/v1/events/stream?${query}`, controller.signal);
}

function streamState(text, tone) {
  const state = $("#stream-state");
  state.textContent = `stream: ${text}`;
  state.className = `badge ${tone}`;
}

async function readStream(url, signal) {
  while (!signal.aborted) {
    try {
      const headers = { Accept: "text/event-stream" };
      if (token) headers.Authorization = `Bearer ${token}`;
      if (stream.lastId !== null) headers["Last-Event-ID"] = String(stream.lastId);
      const response = await fetch(url, { headers, signal });
      if (response.status === 401 && !askedForToken) {
        askedForToken = true;
        if (askForToken()) continue;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      streamState("live", "good");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    streamState("reconnecting", "warn");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// One SSE message: `event:`, `id:` and `data:` lines; comments (heartbeats) start with a colon.
function dispatch(message) {
  let type = "message";
  const data = [];
  for (const line of message.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
    else if (field === "id") stream.lastId = value;
  }
  if (!data.length) return;
  const change = JSON.parse(data.join("\n"));
  if (type === "change") {
    showChange(change, true);
    plantsChanged();
  } else if (type === "outcome") {
    showChange(change, false);
  }
}

function showChange(change, fresh) {
  if (stream.paused) return;
  const image = change.after || change.before || {};
  const outcome = change.outcome;
  const tone = !outcome ? "" : outcome.result === "failed" ? "bad" : outcome.result === "filtered" ? "warn" : "good";
  const tr = row([
    cell(change.seq, "num"),
    cell(time(change.committed_at)),
    cell(change.kind),
    cell(change.region),
    cell(image.name || change.plant_id),
    cell((change.changed_fields || []).join(", ")),
    badge(outcome ? outcome.result + (outcome.plugin ? ` by ${outcome.plugin}` : "") : "pending", tone),
  ]);
  tr.dataset.seq = change.seq;
  const rows = $("#stream-rows");
  const known = stream.rows.get(change.seq);
  if (known) {
    known.replaceWith(tr);
  } else {
    if (fresh) tr.classList.add("fresh");
    rows.prepend(tr);
    while (rows.children.length > STREAM_ROWS) {
      stream.rows.delete(Number(rows.lastElementChild.dataset.seq));
      rows.lastElementChild.remove();
    }
  }
  stream.rows.set(change.seq, tr);
}

// ---- operations: sinks, leases, dead letters, plugins -------------------------------------------

const probeCharts = new Map();

async function loadSinks() {
  const { body } = await api("GET", "/v1/sinks");
  const cards = $("#sink-cards");
  if (!cards.querySelector(".sink")) cards.textContent = "";
  const seen = new Set();
  for (const sink of body.items) {
    seen.add(sink.name);
    let card = cards.querySelector(`[data-sink="${CSS.escape(sink.name)}"]`);
    if (!card) {
      card = document.createElement("div");
      card.className = "sink";
      card.dataset.sink = sink.name;
      card.innerHTML = '<div class="about"></div><div class="probe"></div>';
      cards.append(card);
    }
    const about = card.querySelector(".about");
    const tone = sink.state === "enabled" ? "good" : sink.state === "waiting" ? "warn" : "bad";
    const title = document.createElement("div");
    title.append(Object.assign(document.createElement("strong"), { textContent: sink.name }), " ",
      badge(sink.state, tone));
    const reason = sink.disabled_reason || sink.waiting_reason || sink.last_error || "";
    const figures = document.createElement("div");
    figures.className = "figures";
    figures.textContent = `pending ${sink.pending} · in flight ${sink.in_flight} · delivered ${sink.delivered}`
      + ` · failed attempts ${sink.failed_attempts} · dead ${sink.dead}`;
    const why = document.createElement("div");
    why.className = "muted";
    why.textContent = reason;
    const buttons = document.createElement("div");
    if (sink.state === "disabled") buttons.append(button("Enable", () => sinkAction(sink.name, "enable")));
    if (sink.dead > 0) buttons.append(button(`Retry ${sink.dead} dead`, () => sinkAction(sink.name, "retry")));
    about.replaceChildren(title, figures, why, buttons);
    drawProbes(card.querySelector(".probe"), sink);
  }
  for (const card of [...cards.children]) if (!seen.has(card.dataset.sink)) card.remove();
  if (!body.items.length) cards.textContent = "No sinks are configured ([sinks.NAME] in the configuration).";
}

function drawProbes(element, sink) {
  const probes = sink.health || [];
  const data = [probes.map((p) => Date.parse(p.at) / 1000), probes.map((p) => (p.status ? p.response_ms : null))];
  let chart = probeCharts.get(sink.name);
  if (!probes.length) {
    element.textContent = sink.health ? "no probes yet" : "";
    return;
  }
  if (!chart) {
    element.textContent = "";
    chart = new uPlot({
      width: 180, height: 48, legend: { show: false }, cursor: { show: false },
      axes: [{ show: false }, { show: false }],
      series: [{}, { label: "probe ms", stroke: "#1f6feb", width: 1, spanGaps: false }],
    }, data, element);
    probeCharts.set(sink.name, chart);
  } else {
    chart.setData(data);
  }
}

async function sinkAction(name, action) {
  try {
    await api("POST", `/v1/sinks/${encodeURIComponent(name)}/${action}`);
    refresh();
  } catch (error) {
    notice(`${action} ${name}: ${error.message}`);
  }
}

async function loadLeases() {
  const { body } = await api("GET", "/v1/leases");
  $("#instance").textContent = `this replica: ${body.instance_id}`;
  $("#lease-rows").replaceChildren(...body.items.map((lease) => row([
    cell(lease.region || lease.name),
    lease.holder === body.instance_id ? badge(`${lease.holder} (this)`, "good") : cell(lease.holder),
    cell(lease.epoch, "num"),
    lease.held ? cell(time(lease.expires_at)) : badge("expired", "warn"),
  ])));
}

async function loadDead() {
  const params = new URLSearchParams({ status: "dead", limit: "100" });
  const filter = formQuery($("#dead-filter"));
  if (filter.get("sink")) params.set("sink", filter.get("sink"));
  const { body } = await api("GET", `/v1/deliveries?${params}`);
  const plantFilter = filter.get("plant_id");
  const errorFilter = filter.get("error");
  const items = body.items.filter((d) => (!plantFilter || d.plant_id === plantFilter)
    && (!errorFilter || (d.last_error || "").includes(errorFilter)));
  $("#dead-rows").replaceChildren(...items.map((d) => row([
    cell(d.id, "num"),
    cell(d.seq, "num"),
    cell(d.sink || `plugin ${d.plugin}`),
    cell(d.plant_id, "mono"),
    cell(d.attempts, "num"),
    cell(d.last_error),
    button("Retry", () => retryDead(d.id)),
  ])));
}

async function retryDead(id) {
  try {
    await api("POST", `/v1/deliveries/${id}/retry`);
    refresh();
  } catch (error) {
    notice(`Retry ${id}: ${error.message}`);
  }
}

async function retryMatching() {
  const filter = Object.fromEntries(formQuery($("#dead-filter")));
  try {
    const { body: dry } = await api("POST", "/v1/deliveries/retry", { body: { ...filter, dry_run: true } });
    if (!window.confirm(`Retry ${dry.matched} dead letters matching this filter, in seq order per plant?`)) return;
    const { body } = await api("POST", "/v1/deliveries/retry", { body: filter });
    $("#dead-bulk-result").textContent = `${body.retried} put back in their queues`;
    refresh();
  } catch (error) {
    notice(`Bulk retry: ${error.message}`);
  }
}

async function loadPlugins() {
  const { body } = await api("GET", "/v1/plugins");
  $("#pipeline").textContent = `pipeline ${short(body.pipeline)}`;
  const tone = { active: "good", quarantined: "bad", rolled_back: "warn" };
  const rows = body.items.map((p) => row([
    cell(p.name),
    cell(p.roles.join(", ")),
    badge(p.state, tone[p.state]),
    cell(short(p.sha256), "mono"),
    cell(time(p.loaded_at)),
    cell(p.calls, "num"),
    cell(p.errors + p.traps, "num"),
    cell(p.mean_us, "num"),
    cell(p.p99_us, "num"),
    cell(p.previous ? short(p.previous.sha256) : "", "mono"),
    p.shadow ? button("Compare", () => showShadow(p.name)) : cell(""),
  ]));
  for (const file of body.compiling || []) {
    rows.push(row([cell(file.name), cell(""), badge("compiling", "warn"), cell(short(file.sha256), "mono")]));
  }
  $("#plugin-rows").replaceChildren(...rows);
  const refused = $("#plugin-refused");
  refused.replaceChildren(...(body.refused || []).map((r) => {
    const line = document.createElement("div");
    line.className = "problem";
    line.textContent = `refused ${r.path}: ${r.reason}`;
    return line;
  }));
  samplePlugins(body.items);
}

async function showShadow(name) {
  try {
    const { body } = await api("GET", `/v1/plugins/${encodeURIComponent(name)}/shadow`);
    const r = body.report;
    window.alert(`${name}: shadow ${short(body.shadow.sha256)} answered ${r.events} events, `
      + `${r.same} the same; differences: ${JSON.stringify(r.differences)}`);
  } catch (error) {
    notice(`Shadow of ${name}: ${error.message}`);
  }
}

// ---- backfills ----------------------------------------------------------------------------------

async function startBackfill(event) {
  event.preventDefault();
  const form = formQuery($("#backfill-form"));
  const list = (text) => (text ? text.split(",").map((s) => s.trim()).filter(Boolean) : undefined);
  const filter = { region: form.get("region") || undefined, fuel: form.get("fuel") || undefined,
    status: form.get("status") || undefined, ids: list(form.get("ids")) };
  try {
    await api("POST", "/v1/backfills", { body: { filter, sinks: list(form.get("sinks")) } });
    loadBackfills();
  } catch (error) {
    notice(`Backfill: ${error.message}`);
  }
}

async function loadBackfills() {
  const { body } = await api("GET", "/v1/backfills?limit=20");
  $("#backfill-rows").replaceChildren(...body.items.map((backfill) => {
    const bar = document.createElement("progress");
    bar.max = Math.max(backfill.total, 1);
    bar.value = backfill.done;
    const percent = backfill.total ? Math.floor((100 * backfill.done) / backfill.total) : 100;
    const progress = document.createElement("span");
    progress.className = "backfill-progress";
    progress.append(bar, ` ${percent} % (${backfill.done} / ${backfill.total})`);
    return row([cell(backfill.id, "num"), cell(JSON.stringify(backfill.filter)), cell(backfill.sinks.join(", ")),
      badge(backfill.state, backfill.state === "done" ? "good" : "warn"), progress]);
  }));
}

// ---- charts -------------------------------------------------------------------------------------

const PALETTE = ["#1f6feb", "#1a7f37", "#cf222e", "#9a6700", "#8250df", "#0a7ea4", "#bf3989", "#57606a"];
const charts = new Map();

function drawChart(id, xs, series) {
  const element = $(id);
  const key = series.map((s) => s.label).join("|");
  let entry = charts.get(id);
  element.classList.toggle("empty", series.length === 0);
  if (!series.length) {
    if (entry) entry.chart.destroy();
    charts.delete(id);
    return;
  }
  const data = [xs, ...series.map((s) => s.values)];
  if (entry && entry.key === key) {
    entry.chart.setData(data);
    return;
  }
  if (entry) entry.chart.destroy();
  const chart = new uPlot({
    width: element.clientWidth || 300,
    height: 170,
    legend: { live: false },
    scales: { x: { time: true } },
    axes: [{ stroke: "#677587", grid: { stroke: "#dde3ea55" } }, { stroke: "#677587", grid: { stroke: "#dde3ea55" }, size: 48 }],
    // Points too: a series with one value in the window draws no line.
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true,
      points: { show: true, size: 4, fill: PALETTE[i % PALETTE.length] },
    }))],
  }, data, element);
  charts.set(id, { chart, key });
}

async function loadStats() {
  const window_ = $("#window").value;
  const step = { "15m": "1m", "1h": "1m", "6h": "5m", "24h": "15m" }[window_];
  const { body } = await api("GET", `/v1/stats?window=${window_}&step=${step}`);
  const xs = body.buckets.map((at) => Date.parse(at) / 1000);
  const seconds = xs.length > 1 ? xs[1] - xs[0] : 60;
  const perRegion = new Map();
  for (const s of body.events) {
    const sum = perRegion.get(s.region) || s.counts.map(() => 0);
    perRegion.set(s.region, sum.map((v, i) => v + s.counts[i]));
  }
  drawChart("#chart-events", xs, [...perRegion].map(([region, counts]) => ({
    label: region, values: counts.map((c) => c / seconds),
  })));
  drawChart("#chart-deliveries", xs, body.deliveries.filter((s) => s.outcome === "delivered").map((s) => ({
    label: s.sink, values: s.counts.map((c) => c / seconds),
  })));
  drawChart("#chart-latency", xs, body.latency.flatMap((s) => [
    { label: `${s.sink} p50`, values: s.p50_ms },
    { label: `${s.sink} p99`, values: s.p99_ms },
  ]));
}

// Plugin call times come from /v1/plugins, sampled by this page while it is open.
const pluginSamples = { xs: [], series: new Map() };

function samplePlugins(items) {
  pluginSamples.xs.push(Date.now() / 1000);
  for (const p of items) {
    if (!pluginSamples.series.has(p.name)) pluginSamples.series.set(p.name, pluginSamples.xs.slice(1).map(() => null));
  }
  for (const [name, values] of pluginSamples.series) {
    const plugin = items.find((p) => p.name === name);
    values.push(plugin ? plugin.mean_us : null);
  }
  if (pluginSamples.xs.length > PLUGIN_SAMPLES) {
    pluginSamples.xs.shift();
    for (const values of pluginSamples.series.values()) values.shift();
  }
  // One sample gives uPlot no time range to draw.
  if (pluginSamples.xs.length < 2) return;
  drawChart("#chart-plugins", pluginSamples.xs, [...pluginSamples.series].map(([label, values]) => ({ label, values })));
}

// ---- wiring -------------------------------------------------------------------------------------

async function refresh() {
  const parts = [loadSinks, loadLeases, loadDead, loadPlugins, loadStats, loadBackfills];
  const results = await Promise.allSettled(parts.map((load) => load()));
  const failed = results.find((r) => r.status === "rejected");
  if (failed) notice(failed.reason.message);
  else if (!$("#notice").textContent.startsWith("Delete") && !$("#notice").textContent.includes("412")) notice("");
}

function start() {
  for (const select of document.querySelectorAll('select[name="fuel"]')) fillOptions(select, FUELS);
  for (const select of document.querySelectorAll('select[name="status"]')) fillOptions(select, STATUSES);
  $("#plant-filter").addEventListener("submit", (e) => { e.preventDefault(); loadPlants(); });
  $("#plant-more").addEventListener("click", () => loadPlants(true));
  $("#plant-new").addEventListener("click", () => openPlantForm(null));
  $("#plant-form").addEventListener("submit", savePlant);
  $("#plant-cancel").addEventListener("click", () => $("#plant-dialog").close());
  $("#stream-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    $("#stream-rows").replaceChildren();
    stream.rows.clear();
    stream.lastId = null;
    connectStream();
  });
  $("#stream-pause").addEventListener("click", (e) => {
    stream.paused = !stream.paused;
    e.target.textContent = stream.paused ? "Resume" : "Pause";
  });
  $("#dead-filter").addEventListener("submit", (e) => { e.preventDefault(); loadDead(); });
  $("#dead-bulk").addEventListener("click", retryMatching);
  $("#backfill-form").addEventListener("submit", startBackfill);
  $("#window").addEventListener("change", loadStats);
  $("#token-button").hidden = !token;
  $("#token-button").addEventListener("click", () => { askForToken(); refresh(); connectStream(); });
  loadPlants();
  connectStream();
  refresh();
  setInterval(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", start);
