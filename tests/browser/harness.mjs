// Shared pieces of the browser tests: the real server binary (start on a port, signal it,
// restart it on the same port), Debian's Chromium through playwright-core, a TCP proxy
// the test controls, and an in-page recorder around the client library.
//
// Not a test file itself: node --test runs only tests/browser/*.test.mjs.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "..", "..");
export const CHROMIUM = process.env.TICKWIRE_CHROMIUM || "/usr/bin/chromium";
export const BIN = path.resolve(ROOT, process.env.TICKWIRE_BIN || "build/tickwire");
export const ARTIFACTS = path.join(HERE, "artifacts");

/** The reason to skip the whole suite, or false. Only a missing Chromium skips. */
export const SKIP = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the browser tests`;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn() until it returns a truthy value; throws after timeout ms with what. */
export async function until(fn, { timeout = 10000, every = 25, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(every);
  }
}

const live = new Set(); // every child still running, killed at exit whatever happens
process.on("exit", () => {
  for (const p of live) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {}
  }
});

/**
 * The tickwire binary on 127.0.0.1:port (0 = a free one). Resolves once it printed
 * "tickwire: listening on 127.0.0.1:PORT". A restart on the same port right after the old
 * process died may briefly find the address taken (exit 2): it is retried for a while.
 */
export async function startServer({ port = 0, args = [], workers = 2 } = {}) {
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      return await startOnce(port, args, workers);
    } catch (e) {
      if (!e.retry || Date.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

function startOnce(port, args, workers) {
  return new Promise((resolve, reject) => {
    if (!existsSync(BIN)) return reject(new Error(`server binary ${BIN} not found (set TICKWIRE_BIN)`));
    const argv = ["--listen", `127.0.0.1:${port}`, "--workers", String(workers), ...args];
    const proc = spawn(BIN, argv, { stdio: ["ignore", "ignore", "pipe"] });
    live.add(proc);
    const srv = {
      proc,
      port: 0,
      lines: [],
      exited: null,
      exit: new Promise((r) => proc.on("exit", (code, signal) => {
        live.delete(proc);
        srv.exited = { code, signal };
        r(srv.exited);
      })),
      signal(sig) {
        if (!srv.exited) proc.kill(sig);
      },
      /** Signals sig and waits for the exit (SIGKILL after timeout ms). */
      async stop(sig = "SIGTERM", timeout = 10000) {
        srv.signal(sig);
        const t = setTimeout(() => srv.signal("SIGKILL"), timeout);
        const r = await srv.exit;
        clearTimeout(t);
        return r;
      },
      url: "",
      metrics: () => metrics(srv.port),
    };
    let buf = "";
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        srv.lines.push(line);
        const m = /tickwire: listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (m && !srv.port) {
          srv.port = Number(m[1]);
          srv.url = `http://127.0.0.1:${srv.port}`;
          clearTimeout(timer);
          resolve(srv);
        }
      }
    });
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`server did not start in 10 s: ${srv.lines.join("\n")}`));
    }, 10000);
    srv.exit.then(({ code }) => {
      if (srv.port) return;
      clearTimeout(timer);
      const e = new Error(`server exited ${code} before listening: ${srv.lines.join("\n")}`);
      e.retry = code === 2 && port !== 0 && srv.lines.some((l) => /in use/i.test(l));
      reject(e);
    });
  });
}

/**
 * One HTTP request on its own connection (Connection: close). Not fetch(): its idle
 * keep-alive connection would hold a SIGTERM'd server's drain for 4 s.
 */
export function request(port, method, path, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on("error", reject);
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.end(body);
  });
}

/** GET /metrics parsed into {name or name{labels}: number}. */
export async function metrics(port) {
  const { text } = await request(port, "GET", "/metrics");
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const sp = line.lastIndexOf(" ");
    out[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return out;
}

/** POST /publish?topic=T with a JSON body; resolves with the seq. */
export async function publish(port, topic, data) {
  const r = await request(port, "POST", `/publish?topic=${encodeURIComponent(topic)}`, {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(data),
  });
  if (r.status !== 200) throw new Error(`publish ${topic}: ${r.status} ${r.text}`);
  return JSON.parse(r.text).seq;
}

/**
 * A TCP proxy on 127.0.0.1:<free port> to the upstream port, which the test controls:
 * drop() cuts every connection (both sides closed at once, no WebSocket Close: the page
 * sees 1006, as after a lost network), refuse = true cuts new connections at once,
 * onServerData(chunk, pair) may return "drop" to cut the connection instead of forwarding
 * that chunk (e.g. an ack the client must not see).
 *
 * Cut with destroy(), not resetAndDestroy(): with the latter, Node 20 sometimes spins at
 * 100% CPU in its exit cleanup (Environment::CleanupHandles) and the test file never ends.
 */
export async function startProxy(upstreamPort) {
  const proxy = {
    upstream: upstreamPort,
    refuse: false,
    onServerData: null,
    pairs: new Set(),
    accepted: 0,
    drop() {
      const n = proxy.pairs.size;
      for (const p of [...proxy.pairs]) kill(p);
      return n;
    },
    close: () => new Promise((r) => {
      proxy.drop();
      server.close(() => r());
    }),
  };
  const kill = (p) => {
    proxy.pairs.delete(p);
    for (const s of [p.client, p.server]) {
      if (!s.destroyed) s.destroy();
    }
  };
  const server = net.createServer((client) => {
    proxy.accepted++;
    if (proxy.refuse) {
      client.on("error", () => {});
      client.destroy();
      return;
    }
    const up = net.connect(proxy.upstream, "127.0.0.1");
    const pair = { client, server: up };
    proxy.pairs.add(pair);
    client.setNoDelay(true);
    up.setNoDelay(true);
    client.on("data", (d) => up.write(d));
    up.on("data", (d) => {
      if (proxy.onServerData && proxy.onServerData(d, pair) === "drop") return kill(pair);
      client.write(d);
    });
    // An orderly close on one side is passed on as one (FIN); errors as a reset.
    for (const s of [client, up]) {
      const other = s === client ? up : client;
      s.on("error", () => kill(pair));
      s.on("end", () => {
        if (!other.destroyed) other.end();
      });
      s.on("close", () => {
        proxy.pairs.delete(pair);
        if (!other.destroyed) other.end();
      });
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  proxy.port = server.address().port;
  return proxy;
}

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Many timers and sockets in one page in the background: do not throttle them.
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];

/** Debian's Chromium, headless, with a fresh profile (playwright-core makes one per launch). */
export async function launchBrowser() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/**
 * A same-origin page at origin (http://127.0.0.1:PORT, the server or a proxy to it): the
 * library is imported from origin + "/tickwire.js" and the recorder below is installed as
 * window.H. The page stays usable while the server is down.
 */
export async function openPage(browser, origin) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.log(`# page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource|WebSocket connection/.test(m.text()))
      console.log(`# page console.error: ${m.text()}`);
  });
  if (process.env.TICKWIRE_JS) {
    // A library file to try instead of the copy built into the server (no rebuild needed).
    const body = readFileSync(path.resolve(ROOT, process.env.TICKWIRE_JS), "utf8");
    await page.route(`${origin}/tickwire.js`, (r) => r.fulfill({ status: 200, contentType: "text/javascript", body }));
  }
  // A document the server itself serves (plain text "ok"), so that the page's address
  // space is the loopback one: Chromium's Local Network Access checks block a page that
  // came from nowhere (page.route) from opening sockets to 127.0.0.1.
  await page.goto(`${origin}/healthz`);
  await page.evaluate(installRecorder, `${origin}/tickwire.js`);
  return page;
}

/**
 * Runs in the page. window.H.make(name, url, opts) makes a Tickwire whose sockets are a
 * recording WebSocket subclass: every socket's creation, open, frames sent and received,
 * error and close (code, reason, wasClean) land in H.clients[name].log with performance.now()
 * times; its "state" events in .states; H.sub(name, topic, opts) subscribes and records the
 * messages, "subscribed" and "gap" events in .subs[topic]. Nothing here judges: the tests do.
 */
async function installRecorder(libUrl) {
  const mod = await import(libUrl);
  const Tickwire = mod.Tickwire || globalThis.Tickwire;
  const now = () => performance.now();
  const H = {
    Tickwire,
    clients: {},
    errors: [],
    make(name, url, opts = {}) {
      const c = { name, log: [], states: [], subs: {}, sockets: 0, events: {} };
      class RecordingSocket extends WebSocket {
        constructor(u, p) {
          super(u, p);
          const id = ++c.sockets;
          c.log.push({ t: now(), ev: "create", id, url: String(u) });
          this.addEventListener("open", () => c.log.push({ t: now(), ev: "open", id, protocol: this.protocol }));
          this.addEventListener("message", (e) => {
            let type = null;
            try {
              type = JSON.parse(e.data).type;
            } catch {}
            c.log.push({ t: now(), ev: "recv", id, type, data: type === "message" ? undefined : e.data });
          });
          this.addEventListener("error", () => c.log.push({ t: now(), ev: "error", id }));
          this.addEventListener("close", (e) =>
            c.log.push({ t: now(), ev: "close", id, code: e.code, reason: e.reason, wasClean: e.wasClean })
          );
          this._id = id;
        }
        send(d) {
          let type = null;
          try {
            type = JSON.parse(d).type;
          } catch {}
          c.log.push({ t: now(), ev: "send", id: this._id, type, data: String(d) });
          return super.send(d);
        }
      }
      c.tw = new Tickwire(url, { ...opts, WebSocket: RecordingSocket });
      c.tw.on("state", (state, info) => c.states.push({ t: now(), state, info: info ? { ...info } : info }));
      for (const ev of ["rtt", "pong", "error"]) {
        try {
          c.tw.on(ev, (...a) => (c.events[ev] ||= []).push({ t: now(), args: JSON.parse(JSON.stringify(a)) }));
        } catch {}
      }
      H.clients[name] = c;
      return c;
    },
    sub(name, topic, opts = {}) {
      const c = H.clients[name];
      const s = { topic, msgs: [], subscribed: [], gaps: [] };
      s.sub = c.tw.subscribe(topic, opts, (m) =>
        s.msgs.push({ t: now(), seq: m.seq, epoch: m.epoch, data: m.data, topic: m.topic })
      );
      s.sub.on("subscribed", (e) => s.subscribed.push({ t: now(), ...e }));
      s.sub.on("gap", (e) => s.gaps.push({ t: now(), ...e }));
      c.subs[topic] = s;
      return true;
    },
    /** A publish through the library; the outcome lands in H.pubs[key]. */
    pubs: {},
    publish(name, key, topic, data) {
      const p = { t: now(), done: false };
      H.pubs[key] = p;
      H.clients[name].tw.publish(topic, data).then(
        (r) => Object.assign(p, { done: true, ok: true, seq: r.seq, duplicate: r.duplicate, tDone: now() }),
        (e) => Object.assign(p, { done: true, ok: false, error: String(e && e.message), tDone: now() })
      );
      return true;
    },
    /**
     * A plain WebSocket, no library: subscribes with since:0 and collects every message of
     * topic until `settle` ms pass without one. The server's own account of the topic.
     */
    history(url, topic, settle = 300) {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        const msgs = [];
        let timer = null;
        const finish = () => {
          ws.close();
          resolve(msgs);
        };
        ws.onopen = () => ws.send(JSON.stringify({ type: "subscribe", topic, since: 0 }));
        ws.onerror = () => reject(new Error("history socket failed"));
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          if (m.type === "message") msgs.push({ seq: m.seq, data: m.data });
          if (m.type === "subscribed" || m.type === "message") {
            clearTimeout(timer);
            timer = setTimeout(finish, settle);
          }
        };
      });
    },
  };
  window.H = H;
  return true;
}

/** The histogram of values (ms) in buckets of width ms, as printable lines. */
export function histogram(values, width, lo = 0, hi = Math.max(...values)) {
  const n = Math.max(1, Math.ceil((hi - lo + 1) / width));
  const counts = new Array(n).fill(0);
  for (const v of values) counts[Math.min(n - 1, Math.max(0, Math.floor((v - lo) / width)))]++;
  const top = Math.max(...counts);
  return {
    counts,
    lines: counts.map((k, i) => {
      const a = lo + i * width;
      const label = `${String(a).padStart(6)}-${String(a + width).padEnd(6)} ms`;
      return `${label} ${String(k).padStart(4)} ${"█".repeat(Math.round((k / top) * 50))}`;
    }),
  };
}

export function artifactsDir() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}

/** page.waitForFunction with a bounded wait and a message that names what was awaited. */
export async function waitIn(page, what, fn, arg, timeout = 10000) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout, polling: 25 })).jsonValue();
  } catch (e) {
    if (/Timeout/i.test(String(e && e.message))) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    throw e;
  }
}

/**
 * Everything one test starts, stopped when it ends whatever happened: servers (SIGKILL,
 * after SIGCONT), proxies, browsers. On failure the server's stderr is printed.
 */
export function session(t) {
  const s = { servers: [], proxies: [], browsers: [] };
  s.server = async (opts) => {
    const srv = await startServer(opts);
    s.servers.push(srv);
    return srv;
  };
  s.proxy = async (port) => {
    const p = await startProxy(port);
    s.proxies.push(p);
    return p;
  };
  s.browser = async () => {
    const b = await launchBrowser();
    s.browsers.push(b);
    return b;
  };
  // Each step bounded: a cleanup that hangs must not hold the test file open.
  const bounded = (p, ms = 5000) => {
    let timer;
    const late = new Promise((r) => (timer = setTimeout(r, ms)));
    return Promise.race([Promise.resolve(p).catch(() => {}), late]).finally(() => clearTimeout(timer));
  };
  t.after(async () => {
    const t0 = Date.now();
    const lap = (what) => process.env.TW_DEBUG_CLEANUP && console.log(`# cleanup ${what} ${Date.now() - t0} ms`);
    for (const b of s.browsers) await bounded(b.close());
    lap("browsers");
    for (const p of s.proxies) await bounded(p.close(), 1000);
    lap("proxies");
    for (const srv of s.servers) {
      if (srv.exited) continue;
      srv.signal("SIGCONT");
      await bounded(srv.stop("SIGKILL", 2000));
    }
    lap("servers");
  });
  return s;
}

/** The recorder's view of client name: {states, log, subs} (plain data, no functions). */
export function snapshotOf(page, name) {
  return page.evaluate((n) => {
    const c = window.H.clients[n];
    const subs = {};
    for (const [k, v] of Object.entries(c.subs))
      subs[k] = { msgs: v.msgs, subscribed: v.subscribed, gaps: v.gaps };
    return { states: c.states, log: c.log, subs, events: c.events };
  }, name);
}
