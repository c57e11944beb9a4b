// The demo page served at GET /: one tickwire.js connection to this server, shown live.
// Plain ES module, no framework, nothing fetched from elsewhere.
import { Tickwire } from "/tickwire.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const WS_URL = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const INDEX_TOPIC = "demo.symbols";
const NOTES_TOPIC = "demo.notes";
const DEFAULT_SYMBOLS = 12; // of the demo feed's symbols, subscribed at first
const SETTINGS = {
  // Faster than the library's defaults so that a visitor sees the heartbeat and the
  // backoff move within seconds.
  heartbeat: { interval: 2000, timeout: 6000 },
  backoff: { base: 1000, max: 10000 },
};
const nf = new Intl.NumberFormat("en-US");
const nf1 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const pxf = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

const CLOSE_MEANING = {
  1000: "normal closure",
  1001: "going away: the server is restarting",
  1002: "protocol error",
  1003: "unsupported data",
  1005: "no status code",
  1006: "connection lost (no Close frame)",
  1007: "invalid UTF-8",
  1008: "policy violation (authentication): no retry",
  1009: "message too big",
  1011: "server error",
  1013: "try again later (slow consumer)",
  4001: "token expired: no retry",
};
const closeText = (code, reason) => {
  if (code == null) return reason || "";
  let m = CLOSE_MEANING[code] || (code >= 4000 && code <= 4099 ? "application: no retry" : "");
  return `${code}${m ? ` — ${m}` : ""}${reason ? ` · “${reason}”` : ""}`;
};
const secs = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${nf1.format(ms / 1000)} s`);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

// ---------------------------------------------------------------------------------------
// The socket the library gets: a plain WebSocket behind a thin wrapper that can be dropped
// as a lost network drops it (the library sees an error and a 1006 close, the server sees
// the socket go), and that notes app pings and pongs on the wire for the RTT chart.

let current = null; // the live DemoSocket
const pingsSent = new Map(); // time field of an app ping -> performance.now() when sent
let lastFrameAt = 0;

class DemoSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  constructor(url, protocols) {
    super();
    this.onopen = this.onmessage = this.onerror = this.onclose = null;
    this._dropped = false;
    this._ws = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
    for (const type of ["open", "message", "error", "close"]) {
      this._ws.addEventListener(type, (e) => {
        if (this._dropped) return;
        if (type === "message") onWireMessage(e.data);
        if (type === "open") onSocketOpen();
        this._emit(copyEvent(e));
      });
    }
    current = this;
  }
  get readyState() { return this._dropped ? 3 : this._ws.readyState; }
  get url() { return this._ws.url; }
  get protocol() { return this._ws.protocol; }
  get extensions() { return this._ws.extensions; }
  get bufferedAmount() { return this._ws.bufferedAmount; }
  get binaryType() { return this._ws.binaryType; }
  set binaryType(v) { this._ws.binaryType = v; }
  send(data) {
    if (this._dropped) throw new DOMException("the connection was dropped", "InvalidStateError");
    if (typeof data === "string" && data.includes('"ping"')) {
      try {
        const m = JSON.parse(data);
        if (m.type === "ping") pingsSent.set(String(m.time), performance.now());
      } catch {}
    }
    this._ws.send(data);
  }
  close(code, reason) {
    if (!this._dropped) this._ws.close(code, reason);
  }
  /** Cuts the connection: no close handshake is seen by the library, only 1006. */
  drop() {
    if (this._dropped || this._ws.readyState >= 2) return false;
    this._dropped = true;
    try { this._ws.close(); } catch {}
    setTimeout(() => {
      this._emit(new Event("error"));
      this._emit(new CloseEvent("close", { code: 1006, reason: "", wasClean: false }));
    }, 0);
    return true;
  }
  _emit(e) {
    this.dispatchEvent(e);
    const h = this["on" + e.type];
    if (typeof h === "function") h.call(this, e);
  }
}
for (const [k, v] of Object.entries({ CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 }))
  Object.defineProperty(DemoSocket.prototype, k, { value: v });

function copyEvent(e) {
  switch (e.type) {
    case "message": return new MessageEvent("message", { data: e.data, origin: e.origin });
    case "close": return new CloseEvent("close", { code: e.code, reason: e.reason, wasClean: e.wasClean });
    default: return new Event(e.type);
  }
}

function onWireMessage(data) {
  lastFrameAt = performance.now();
  if (typeof data === "string" && data.startsWith('{"type":"pong"')) {
    try {
      const key = String(JSON.parse(data).time);
      const sent = pingsSent.get(key);
      if (sent !== undefined) {
        pingsSent.delete(key);
        if (!rttFromLibrary) addRtt(performance.now() - sent);
      }
    } catch {}
  }
  if (pingsSent.size > 50) pingsSent.clear();
}

// ---------------------------------------------------------------------------------------
// The connection and its state.

const conn = { state: "connecting", info: {}, openedAt: 0, opens: 0, retryAt: 0, retryDelay: 0, everOpen: false };
let tw = null;
let rttFromLibrary = false;

function connect() {
  const token = params.get("token");
  tw = new Tickwire(WS_URL, {
    ...SETTINGS,
    ...(token ? { token: async () => token } : {}),
    WebSocket: DemoSocket,
  });
  window.tickwireDemo.tw = tw;
  tw.on("state", onState);
  // The library's own view of the heartbeat, where it offers one.
  for (const ev of ["rtt", "pong"]) {
    try {
      tw.on(ev, (x) => {
        const ms = typeof x === "number" ? x : x && (x.rtt ?? x.ms);
        if (typeof ms === "number" && isFinite(ms)) {
          rttFromLibrary = true;
          addRtt(ms);
        }
      });
    } catch {}
  }
  try { tw.on("error", (e) => log(`library error: ${e && (e.message || e.code || e)}`, "bad")); } catch {}
  for (const row of rows.values()) subscribeRow(row);
  if (!rows.has(INDEX_TOPIC)) subscribeIndex();
  $("url").textContent = WS_URL;
  $("cadence").textContent = `ping every ${secs(SETTINGS.heartbeat.interval)}, dead after ${secs(SETTINGS.heartbeat.timeout)} of silence`;
}

function onState(state, info = {}) {
  info = info || {};
  const prev = conn.state;
  conn.state = state;
  conn.info = info;
  const el = $("state");
  el.textContent = state;
  el.className = `pill state-${state}`;
  for (const li of document.querySelectorAll(".diagram li")) li.classList.toggle("on", li.dataset.state === state);
  $("drop").disabled = state !== "open";
  $("reconnect").hidden = state !== "closed";
  if (info.attempt !== undefined) $("attempt").textContent = String(info.attempt);
  if (info.code !== undefined && info.code !== null) $("lastclose").textContent = closeText(info.code, info.reason);

  if (state === "open") {
    conn.openedAt = performance.now();
    conn.opens++;
    $("opens").textContent = `${conn.opens} opened by this tab`;
    $("delay").textContent = "–";
    $("attempt").textContent = info.attempt ? `${info.attempt} (this one worked)` : "first try";
    stopRetry();
    log(conn.everOpen ? `open again: resuming ${rows.size} topic${rows.size === 1 ? "" : "s"}` : `open ${WS_URL}`, "ok");
    conn.everOpen = true;
  } else if (state === "reconnecting") {
    conn.openedAt = 0;
    const d = Number(info.delay);
    if (isFinite(d)) {
      $("delay").textContent = secs(d);
      startRetry(d, retryHint(info));
    }
    const why = info.code !== undefined ? closeText(info.code, info.reason) : info.reason || "connection failed";
    log(`${why}; attempt ${info.attempt ?? "?"} in ${isFinite(d) ? secs(d) : "?"}${retryHint(info) ? " (the server's retry_ms)" : ""}`, "warn");
  } else if (state === "connecting") {
    stopRetry();
    if (prev === "reconnecting") $("retry-label").textContent = "connecting";
  } else if (state === "closed") {
    conn.openedAt = 0;
    stopRetry();
    log(`closed for good${info.code !== undefined ? `: ${closeText(info.code, info.reason)}` : info.reason ? `: ${info.reason}` : ""}`, "bad");
  }
}

function retryHint(info) {
  if (info.code !== 1001 || !info.reason) return false;
  try {
    return typeof JSON.parse(info.reason).retry_ms === "number";
  } catch {
    return false;
  }
}

function startRetry(delay, fromServer) {
  conn.retryAt = performance.now() + delay;
  conn.retryDelay = delay;
  $("retry").hidden = false;
  $("retry-label").textContent = fromServer ? "server asked to wait" : "next attempt (full jitter)";
}
function stopRetry() {
  conn.retryAt = 0;
  $("retry").hidden = true;
}

$("drop").addEventListener("click", () => {
  if (current && current.drop()) log("dropped the connection (as a lost network would)", "warn");
});
$("reconnect").addEventListener("click", () => {
  $("reconnect").hidden = true;
  conn.everOpen = false;
  connect();
});

// ---------------------------------------------------------------------------------------
// Heartbeat RTT.

const rtts = [];
function addRtt(ms) {
  rtts.push(ms);
  if (rtts.length > 60) rtts.shift();
  $("rtt").textContent = ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
  const min = Math.min(...rtts), max = Math.max(...rtts), avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
  $("rtt-stats").textContent = `${min.toFixed(2)} / ${avg.toFixed(2)} / ${max.toFixed(2)} ms (last ${rtts.length})`;
  sparkline($("rtt-spark"), rtts, "waiting for the first pong…");
}

function sparkline(svg, values, emptyText) {
  const W = 300, H = Number(svg.viewBox.baseVal.height) || 70, pad = 4;
  if (!values.length) {
    svg.innerHTML = `<text class="empty" x="4" y="${H / 2 + 4}">${esc(emptyText)}</text>`;
    return;
  }
  const max = Math.max(...values), min = Math.min(0, ...values);
  const span = max - min || 1;
  const step = values.length > 1 ? W / (values.length - 1) : 0;
  const pts = values.map((v, i) => [i * step, H - pad - ((v - min) / span) * (H - 2 * pad)]);
  const line = pts.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
  const [lx, ly] = pts[pts.length - 1];
  svg.innerHTML =
    `<path class="area" d="${line}L${lx.toFixed(1)},${H}L0,${H}Z"/>` +
    `<path class="line" d="${line}"/>` +
    `<circle class="dot" cx="${Math.min(lx, W - 3).toFixed(1)}" cy="${ly.toFixed(1)}" r="3"/>`;
}

// ---------------------------------------------------------------------------------------
// The ticker: one row per subscribed topic.

const rows = new Map(); // topic -> row
const dirty = new Set();
let symbols = [];

function subscribeIndex() {
  tw.subscribe(INDEX_TOPIC, { snapshot: true }, (m) => {
    const list = m && m.data && Array.isArray(m.data.symbols) ? m.data.symbols : null;
    if (!list) return;
    const first = !symbols.length;
    symbols = list;
    renderChips();
    $("no-demo").hidden = true;
    if (first && !params.get("topics")) for (const s of symbols.slice(0, DEFAULT_SYMBOLS)) addTopic(s);
  });
}

function addTopic(topic) {
  if (rows.has(topic) || !/^[A-Za-z0-9._:-]{1,128}$/.test(topic)) return;
  const tr = document.createElement("tr");
  tr.dataset.topic = topic;
  tr.innerHTML =
    `<td class="sym">${esc(topic)}</td><td class="num val">–</td><td class="num chg">–</td>` +
    `<td class="num seq">–</td><td class="num cnt">0</td><td class="num age">–</td>` +
    `<td class="num rec">0</td><td class="num gaps">0</td>` +
    `<td><button class="x" title="unsubscribe" aria-label="unsubscribe ${esc(topic)}">×</button></td>`;
  const cell = (c) => tr.querySelector(`.${c}`);
  const row = {
    topic, tr, sub: null, seq: null, epoch: null, data: undefined, prevPx: null, count: 0,
    ts: 0, at: 0, recovered: 0, replayed: 0, gaps: 0, subscribedOnce: false, awaiting: false, sinceOpen: 0,
    c: { val: cell("val"), chg: cell("chg"), seq: cell("seq"), cnt: cell("cnt"), age: cell("age"), rec: cell("rec"), gaps: cell("gaps") },
  };
  tr.querySelector(".x").addEventListener("click", () => removeTopic(topic));
  rows.set(topic, row);
  $("ticks").tBodies[0].append(tr);
  if (tw) subscribeRow(row);
  renderChips();
  $("tk-count").textContent = `${rows.size} topic${rows.size === 1 ? "" : "s"}`;
}

function removeTopic(topic) {
  const row = rows.get(topic);
  if (!row) return;
  try { row.sub && row.sub.unsubscribe(); } catch {}
  row.tr.remove();
  rows.delete(topic);
  dirty.delete(row);
  renderChips();
  $("tk-count").textContent = rows.size ? `${rows.size} topic${rows.size === 1 ? "" : "s"}` : "";
}

function subscribeRow(row) {
  row.subscribedOnce = false;
  row.sub = tw.subscribe(row.topic, { snapshot: true }, (m) => {
    row.seq = m.seq;
    row.epoch = m.epoch;
    row.data = m.data;
    row.count++;
    row.at = performance.now();
    if (row.awaiting) row.sinceOpen++;
    dirty.add(row);
  });
  row.sub.on("subscribed", (e = {}) => {
    row.awaiting = false;
    if (e.epoch) row.epoch = e.epoch;
    if (row.seq === null && typeof e.seq === "number") {
      row.seq = e.seq;
      dirty.add(row);
    }
    if (row.subscribedOnce && e.recovered === true) {
      row.recovered++;
      row.replayed += row.sinceOpen;
      resumed({ recovered: 1, replayed: row.sinceOpen });
    } else if (row.subscribedOnce) {
      resumed({ fresh: 1 });
    }
    row.subscribedOnce = true;
    row.sinceOpen = 0;
    dirty.add(row);
  });
  row.sub.on("gap", (e = {}) => {
    row.gaps++;
    row.lastGap = e;
    dirty.add(row);
    resumed({ gaps: 1 });
  });
}

function onSocketOpen() {
  for (const row of rows.values()) {
    row.awaiting = true;
    row.sinceOpen = 0;
  }
}

// One line in the log per reconnect, however many topics resumed.
let batch = null;
function resumed(d) {
  if (!batch) batch = { recovered: 0, replayed: 0, gaps: 0, fresh: 0, timer: 0 };
  for (const k of Object.keys(d)) batch[k] += d[k];
  clearTimeout(batch.timer);
  batch.timer = setTimeout(() => {
    const b = batch;
    batch = null;
    const parts = [];
    if (b.recovered) parts.push(`${b.recovered} recovered with since (${nf.format(b.replayed)} missed message${b.replayed === 1 ? "" : "s"} replayed, none twice)`);
    if (b.gaps) parts.push(`${b.gaps} gap${b.gaps === 1 ? "" : "s"}: history did not reach back (new epoch?), resubscribed with a snapshot`);
    if (b.fresh && !b.gaps) parts.push(`${b.fresh} resubscribed`);
    log(`resume: ${parts.join("; ")}`, b.gaps ? "warn" : "ok");
  }, 300);
}

function renderChips() {
  const box = $("symbols");
  box.replaceChildren(
    ...symbols.map((s) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `chip${rows.has(s) ? " on" : ""}`;
      b.textContent = s;
      b.addEventListener("click", () => (rows.has(s) ? removeTopic(s) : addTopic(s)));
      return b;
    })
  );
}

function renderRow(row) {
  const d = row.data;
  const c = row.c;
  if (d && typeof d === "object" && typeof d.px === "number") {
    c.val.textContent = pxf.format(d.px);
    if (typeof d.chg === "number") {
      c.chg.textContent = `${d.chg > 0 ? "▲ +" : d.chg < 0 ? "▼ " : ""}${pxf.format(d.chg)}`;
      c.chg.className = `num chg ${d.chg > 0 ? "up" : d.chg < 0 ? "down" : ""}`;
    }
    if (row.prevPx !== null && d.px !== row.prevPx) {
      const cls = d.px > row.prevPx ? "flash-up" : "flash-down";
      c.val.classList.remove("flash-up", "flash-down");
      void c.val.offsetWidth; // restart the animation
      c.val.classList.add(cls);
    }
    row.prevPx = d.px;
    row.ts = typeof d.ts === "number" ? d.ts : 0;
  } else if (d !== undefined) {
    const full = d && typeof d === "object" && typeof d.note === "string" ? d.note : JSON.stringify(d);
    c.val.textContent = full.length > 28 ? `${full.slice(0, 27)}…` : full;
    c.val.title = JSON.stringify(d);
    c.chg.textContent = "";
  }
  c.seq.textContent = row.seq === null ? "–" : nf.format(row.seq);
  c.seq.title = row.epoch ? `epoch ${row.epoch}` : "";
  c.cnt.textContent = nf.format(row.count);
  c.rec.textContent = row.replayed ? `${row.recovered} (${nf.format(row.replayed)} replayed)` : String(row.recovered);
  c.rec.className = `num rec${row.recovered ? " has" : ""}`;
  c.gaps.textContent = String(row.gaps);
  c.gaps.className = `num gaps${row.gaps ? " has" : ""}`;
  if (row.lastGap) c.gaps.title = `last gap: ${JSON.stringify(row.lastGap)}`;
}

function frame() {
  for (const row of dirty) renderRow(row);
  dirty.clear();
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

// Slow-moving text: ages, uptime, the retry countdown.
setInterval(() => {
  const now = performance.now();
  for (const row of rows.values()) {
    if (row.ts) row.c.age.textContent = secs(Math.max(0, Date.now() - row.ts));
    else if (row.at) row.c.age.textContent = secs(now - row.at);
    row.tr.classList.toggle("stale", conn.state !== "open");
  }
  $("uptime").textContent = conn.openedAt ? secs(now - conn.openedAt) : "–";
  $("lastframe").textContent = lastFrameAt && conn.state === "open" ? `${secs(now - lastFrameAt)} ago` : "–";
  if (conn.retryAt) {
    const left = Math.max(0, conn.retryAt - now);
    $("retry-left").textContent = secs(left);
    $("retry-bar").style.width = `${conn.retryDelay ? (100 * (conn.retryDelay - left)) / conn.retryDelay : 100}%`;
  }
}, 100);

// ---------------------------------------------------------------------------------------
// The server's counters, polled from /metrics.

const prevM = { t: 0, pub: 0, sent: 0 };
const sentRates = [];
async function pollMetrics() {
  try {
    const r = await fetch("/metrics", { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const m = parseMetrics(await r.text());
    const t = performance.now();
    const pub = m.tickwire_messages_published_total ?? 0, sent = m.tickwire_messages_sent_total ?? 0;
    $("m-conns").textContent = nf.format(m.tickwire_connections ?? 0);
    $("m-accepted").textContent = nf.format(m.tickwire_connections_accepted_total ?? 0);
    $("m-pub").textContent = `(${nf.format(pub)} in all)`;
    $("m-sent").textContent = `(${nf.format(sent)} in all)`;
    $("m-dead").textContent = nf.format(m.tickwire_heartbeat_timeouts_total ?? 0);
    $("m-1001").textContent = `${nf.format(m['tickwire_closes_total{code="1001"}'] ?? 0)} / ${nf.format(m['tickwire_closes_total{code="1006"}'] ?? 0)}`;
    if (prevM.t && pub >= prevM.pub && sent >= prevM.sent) {
      const dt = (t - prevM.t) / 1000;
      const sr = (sent - prevM.sent) / dt;
      $("m-pub-rate").textContent = nf.format(Math.round((pub - prevM.pub) / dt));
      $("m-sent-rate").textContent = nf.format(Math.round(sr));
      sentRates.push(sr);
      if (sentRates.length > 60) sentRates.shift();
      sparkline($("sent-spark"), sentRates, "");
    }
    Object.assign(prevM, { t, pub, sent });
    $("srv-status").textContent = "/metrics, every second";
    document.querySelector(".srv").classList.remove("down");
  } catch (e) {
    prevM.t = 0;
    $("srv-status").textContent = "/metrics unreachable";
    document.querySelector(".srv").classList.add("down");
  }
  setTimeout(pollMetrics, 1000);
}

function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const sp = line.lastIndexOf(" ");
    out[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Publishing (the offline queue) and the event log.

let pubN = 0;
$("pub-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("pub-text").value.trim() || `note ${pubN + 1}`;
  $("pub-text").value = "";
  if (!rows.has(NOTES_TOPIC)) addTopic(NOTES_TOPIC);
  const li = document.createElement("li");
  const n = ++pubN;
  li.innerHTML = `<span>#${n} ${esc(text)}</span><span class="st queued">${conn.state === "open" ? "sending…" : "queued (offline)"}</span>`;
  $("pubs").prepend(li);
  const st = li.querySelector(".st");
  let p;
  try {
    p = tw.publish(NOTES_TOPIC, { note: text, n, at: Date.now() });
  } catch (err) {
    p = Promise.reject(err);
  }
  Promise.resolve(p).then(
    (r) => {
      st.className = "st acked";
      st.textContent = `seq ${r && r.seq}${r && r.duplicate ? " (duplicate: applied once)" : ""}`;
    },
    (err) => {
      st.className = "st failed";
      st.textContent = `failed: ${err && err.message ? err.message : err}`;
    }
  );
});

function log(text, kind = "") {
  const li = document.createElement("li");
  const t = new Date();
  const hh = t.toTimeString().slice(0, 8) + "." + String(t.getMilliseconds()).padStart(3, "0");
  li.innerHTML = `<time>${hh}</time><span class="${kind}">${esc(text)}</span>`;
  const ol = $("log");
  ol.prepend(li);
  while (ol.children.length > 80) ol.lastElementChild.remove();
}

// ---------------------------------------------------------------------------------------

window.tickwireDemo = { tw: null, rows, conn, rtts, drop: () => current && current.drop() };
for (const el of document.querySelectorAll(".host")) el.textContent = location.host;
$("add-topic").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = $("topic-name").value.trim();
  if (v) addTopic(v);
  $("topic-name").value = "";
});
sparkline($("rtt-spark"), [], "waiting for the first pong…");
sparkline($("sent-spark"), [], "");
for (const t of (params.get("topics") || "").split(",").filter(Boolean)) addTopic(t);
setTimeout(() => {
  if (!symbols.length && conn.everOpen) $("no-demo").hidden = false;
}, 3000);
connect();
pollMetrics();
