#!/usr/bin/env node
// Reconnect storm, measured (issue 10 "Done when"; run by hand, not a test):
//
//   node bench/browser/run.mjs [--build build-web] [--browser 200] [--loadgen 10000]
//                              [--case restart|drop|both] [--spread 5s] [--publish-via ws|http]
//
// 200 tickwire.js clients in one headless Chromium page plus 10,000 tickwire-loadgen
// clients (--scenario storm, resuming --topics with since) on one server, then:
//   restart: SIGTERM (1001 + retry_ms spread over --reconnect-spread), a new process on
//            the same port: every client comes back to a new epoch;
//   drop:    the server stays up and every client-side socket is killed at once
//            (ss -K, SOCK_DESTROY: each side sees its connection aborted, no Close):
//            every client resumes from its last seq, so nothing may be lost.
// Figures: time until all resumed, reconnects per second (peak, from the server's
// accepted-connections counter sampled every 100 ms, and the loadgen's own), messages lost
// (browser: per client, each seq of the topic exactly once; loadgen: its resume report),
// and the client library's size (raw, gzip, min+gzip with terser).
//
// Needs: the build (tickwire, tickwire-loadgen), Debian's chromium, `npm ci` in
// tests/browser (playwright-core) and in bench/browser (terser), iproute2's ss, root
// (ss -K). Prints the command lines it ran.

import { spawn, execFileSync } from "node:child_process";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const BUILD = path.resolve(ROOT, opt("build", "build-web"));
const NB = Number(opt("browser", 200));
const NL = Number(opt("loadgen", 10000));
const CASES = opt("case", "both") === "both" ? ["drop", "restart"] : [opt("case")];
const SPREAD = opt("spread", "5s");
// The loadgen's publishers: over WebSocket by default. Over HTTP (keep-alive POST
// /publish) they hold the old server's SIGTERM drain for the whole --drain-timeout.
const VIA = opt("publish-via", "ws");
const TOPIC = "bench.browser";
const RATE = 20; // messages/s published to the browser clients' topic
process.env.TICKWIRE_BIN = path.join(BUILD, "tickwire");
const LOADGEN = path.join(BUILD, "tickwire-loadgen");

const H = await import("../../tests/browser/harness.mjs");
const { startServer, launchBrowser, openPage, metrics, publish, sleep, histogram } = H;

const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
const say = (s = "") => console.log(s);

async function librarySize() {
  const file = path.join(ROOT, "src/js/tickwire.js");
  const src = readFileSync(file, "utf8");
  const gz = (s) => zlib.gzipSync(Buffer.from(s), { level: 9 }).length;
  let min = null;
  try {
    const { minify } = await import("terser");
    min = (await minify(src, { module: true, compress: true, mangle: true })).code;
  } catch (e) {
    say(`(terser not installed: cd bench/browser && npm ci) ${e.message}`);
  }
  say(`## tickwire.js size (${path.relative(ROOT, file)})`);
  say(`| raw | gzip -9 | terser (module, compress+mangle) | min+gzip |`);
  say(`| ---: | ---: | ---: | ---: |`);
  say(`| ${src.length} B | ${gz(src)} B | ${min ? `${min.length} B` : "–"} | ${min ? `${gz(min)} B` : "–"} |`);
  say();
}

/** Samples the server's accepted-connections counter and connection gauge every 100 ms. */
function sampler(port) {
  const s = { samples: [], stop: false };
  s.done = (async () => {
    while (!s.stop) {
      const t = Date.now();
      try {
        const m = await metrics(port());
        s.samples.push({ t, accepted: m.tickwire_connections_accepted_total, conns: m.tickwire_connections });
      } catch {
        s.samples.push({ t, accepted: null, conns: null });
      }
      await sleep(Math.max(0, 100 - (Date.now() - t)));
    }
  })();
  return s;
}

/** Peak of accepts per second over a sliding 1-s window; a restart resets the counter. */
function peakRate(samples, from) {
  const pts = [];
  let base = 0, prev = null;
  for (const x of samples) {
    if (x.t < from || x.accepted == null) continue;
    if (prev !== null && x.accepted < prev) base += prev; // a new process counts from 0
    prev = x.accepted;
    pts.push({ t: x.t, n: base + x.accepted });
  }
  let peak = 0, at = 0;
  for (let i = 0, j = 0; i < pts.length; i++) {
    while (pts[i].t - pts[j].t > 1000) j++;
    const k = j > 0 ? j - 1 : j; // the sample just before the window
    const dt = (pts[i].t - pts[k].t) / 1000;
    if (dt >= 0.9) {
      const r = (pts[i].n - pts[k].n) / dt;
      if (r > peak) (peak = r), (at = pts[i].t);
    }
  }
  return { peak, at };
}

async function runCase(kind) {
  const args = ["--workers", "2", "--reconnect-spread", SPREAD];
  let srv = await startServer({ args });
  const port = srv.port;
  const work = mkdtempSync(path.join(tmpdir(), "tw-bench-"));
  const json = path.join(work, "loadgen.json");
  const lgArgs = ["--target", `127.0.0.1:${port}`, "--connections", String(NL), "--scenario", "storm",
    "--duration", "120s", "--topics", "100", "--publish-rate", "1000", "--publishers", "2", "--publish-via", VIA,
    "--sources", "127.0.0.1-127.0.0.40", "--quiet", "--json", json, "--seed", "1"];
  say(`## case: ${kind}`);
  say(`server:  ${path.relative(ROOT, srv.proc.spawnfile)} --listen 127.0.0.1:${port} ${args.join(" ")}`);
  say(`loadgen: ${path.relative(ROOT, LOADGEN)} ${lgArgs.join(" ")}`);
  say(`browser: ${NB} tickwire.js clients in one page (library defaults: heartbeat 15 s/45 s, backoff 1 s..30 s), subscribed to ${TOPIC} with snapshot, ${RATE} msgs/s published to it`);

  const lg = spawn(LOADGEN, lgArgs, { stdio: ["ignore", "pipe", "pipe"] });
  let lgOut = "", lgErr = "";
  lg.stdout.on("data", (d) => (lgOut += d));
  lg.stderr.on("data", (d) => (lgErr += d));
  const lgExit = new Promise((r) => lg.on("exit", (code) => r(code)));

  const browser = await launchBrowser();
  const page = await openPage(browser, srv.url);
  await page.evaluate(([url, n, T]) => {
    for (let i = 0; i < n; i++) {
      H.make(`c${i}`, url, {});
      H.sub(`c${i}`, T, { snapshot: true });
    }
  }, [`ws://127.0.0.1:${port}/ws`, NB, TOPIC]);
  const subscribedAll = (k) => page.waitForFunction(([T, k, n]) =>
    Object.values(H.clients).filter((c) => c.subs[T].subscribed.length >= k).length === n, [TOPIC, k, NB],
    { timeout: 120000, polling: 100 });

  // The publisher for the browser topic: steady, through the restart (failures retried).
  let pubStop = false, published = 0, pubErrors = 0;
  const publisher = (async () => {
    let i = 0;
    while (!pubStop) {
      const t = Date.now();
      try {
        await publish(srv.port, TOPIC, { i: ++i });
        published++;
      } catch {
        pubErrors++;
        i--;
      }
      await sleep(Math.max(0, 1000 / RATE - (Date.now() - t)));
    }
  })();

  const t0 = Date.now();
  await subscribedAll(1);
  for (;;) {
    const m = await metrics(port);
    if (m.tickwire_connections >= NL + NB) break;
    if (Date.now() - t0 > 120000) throw new Error(`only ${m.tickwire_connections} connections after 120 s`);
    await sleep(200);
  }
  say(`all ${NL + NB} connected in ${fmt(Date.now() - t0)}`);
  await sleep(3000); // steady state: deliveries flowing everywhere

  const smp = sampler(() => port);
  await sleep(500);
  const eventAt = Date.now();
  const pageEventAt = await page.evaluate(() => performance.now());
  let restartedAt = null;
  if (kind === "restart") {
    const old = srv;
    old.signal("SIGTERM");
    await old.exit;
    srv = await startServer({ port, args });
    restartedAt = Date.now();
  } else {
    // Every established client-side socket to the server's port, killed at once.
    execFileSync("ss", ["-K", "state", "established", "( dport = :" + port + " )"], { stdio: "ignore" });
  }
  await subscribedAll(2);
  const browserBack = Date.now();
  const lgCode = await Promise.race([lgExit, sleep(120000).then(() => "timeout")]);
  await sleep(1500);
  pubStop = true;
  await publisher;
  await sleep(1000); // the last publishes delivered
  smp.stop = true;
  await smp.done;

  const r = await page.evaluate(([T, ev]) => Object.values(H.clients).map((c) => {
    const s = c.subs[T];
    const closes = c.log.filter((e) => e.ev === "close" && e.t >= ev);
    const open = c.log.filter((e) => e.ev === "open" && e.t >= ev).at(-1);
    return {
      code: closes.length ? closes[0].code : null,
      attempts: c.log.filter((e) => e.ev === "create" && e.t >= ev).length,
      lastCreateAt: (c.log.filter((e) => e.ev === "create" && e.t >= ev).at(-1) || { t: ev }).t - ev,
      openAt: open ? open.t - ev : null,
      resumedAt: s.subscribed.length >= 2 ? s.subscribed.at(-1).t - ev : null,
      recovered: s.subscribed.length >= 2 ? s.subscribed.at(-1).recovered : null,
      gaps: s.gaps.map((g) => g.reason),
      msgs: s.msgs.map((m) => [m.epoch, m.seq, m.data.i]),
    };
  }), [TOPIC, pageEventAt]);
  await browser.close();
  const lgJson = JSON.parse(readFileSync(json, "utf8"));
  await srv.stop("SIGTERM");

  // Browser: within each epoch every seq the client could have seen exactly once, in
  // order; across the drop (same epoch) nothing may be missing at all.
  let lost = 0, dup = 0, unordered = 0;
  const byEpoch = new Map(); // epoch -> published seqs, from what any client saw
  for (const x of r) {
    const seen = new Map();
    let last = null;
    for (const [e, seq] of x.msgs) {
      if (last && last[0] === e && seq <= last[1]) unordered++;
      const k = `${e}:${seq}`;
      if (seen.has(k)) dup++;
      seen.set(k, true);
      last = [e, seq];
    }
    const epochs = [...new Set(x.msgs.map((m) => m[0]))];
    for (const e of epochs) {
      const seqs = x.msgs.filter((m) => m[0] === e).map((m) => m[1]);
      const lo = Math.min(...seqs), hi = Math.max(...seqs);
      lost += hi - lo + 1 - new Set(seqs).size; // holes inside what it saw of the epoch
      const all = byEpoch.get(e) || { hi: 0 };
      all.hi = Math.max(all.hi, hi);
      byEpoch.set(e, all);
    }
    x.epochs = epochs;
  }
  // Past the end of what a client saw: the epoch's last seq (what the others saw).
  for (const x of r) {
    for (const e of x.epochs) {
      const hi = Math.max(...x.msgs.filter((m) => m[0] === e).map((m) => m[1]));
      lost += byEpoch.get(e).hi - hi;
    }
  }

  const backs = r.map((x) => x.resumedAt).filter((v) => v !== null);
  const opensPerS = histogram(r.map((x) => x.openAt ?? 0), 1000, 0);
  const srvPeak = peakRate(smp.samples, eventAt);
  const st = lgJson.storm || {};
  const rs = lgJson.resume || {};
  say();
  say(`| figure | browser (${NB}, one page) | loadgen (${NL}) | server |`);
  say(`| --- | ---: | ---: | ---: |`);
  say(`| close seen | ${[...new Set(r.map((x) => x.code))].join(", ")} | drops ${st.drops} | |`);
  const allBack = Math.max(Math.max(...backs), st.all_back_ms ?? Infinity);
  const med = (v) => v.sort((a, b) => a - b)[v.length >> 1];
  const lag = r.map((x) => x.openAt - x.lastCreateAt);
  say(`| time until all resumed | ${fmt(Math.max(...backs))} (median ${fmt(med(backs))}) | ${st.all_back_ms != null ? fmt(st.all_back_ms) : "not all back"} | all ${NL + NB}: ${fmt(allBack)} |`);
  say(`| last attempt started (median / max) | ${fmt(med(r.map((x) => x.lastCreateAt)))} / ${fmt(Math.max(...r.map((x) => x.lastCreateAt)))}; socket made -> open: median ${fmt(med(lag))}, max ${fmt(Math.max(...lag))} | | |`);
  say(`| peak reconnects per second | ${Math.max(...opensPerS.counts)} /s | ${Math.round(st.peak_accept_per_s)} /s | ${Math.round(srvPeak.peak)} /s accepted (1-s window), at +${fmt(srvPeak.at - eventAt)} |`);
  say(`| attempts per client (mean) | ${(r.reduce((a, x) => a + x.attempts, 0) / r.length).toFixed(2)} | reconnects ${lgJson.reconnects}, failures ${JSON.stringify(lgJson.failures || {})} | |`);
  say(`| resumes recovered | ${r.filter((x) => x.recovered === true).length} of ${r.length} | ${rs.resumes - rs.unrecovered} of ${rs.resumes} | |`);
  say(`| gap events (reason) | ${r.reduce((a, x) => a + x.gaps.length, 0)} (${[...new Set(r.flatMap((x) => x.gaps))].join(", ") || "none"}) | unrecovered ${rs.unrecovered}, gaps ${rs.gaps} | |`);
  say(`| messages lost | ${lost} (duplicates ${dup}, out of order ${unordered}) | ${rs.lost} | |`);
  say(`| messages delivered | ${r.reduce((a, x) => a + x.msgs.length, 0)} (${published} published, ${pubErrors} publish attempts refused while down) | ${lgJson.messages ? lgJson.messages.received : "?"} | |`);
  if (restartedAt) say(`new server listening ${fmt(restartedAt - eventAt)} after SIGTERM`);
  say(`browser clients back (open) per second after the event:`);
  for (const l of opensPerS.lines) say(`    ${l}`);
  say(`loadgen exit ${lgCode}; its summary:`);
  say(lgOut.trim().split("\n").map((l) => `    ${l}`).join("\n"));
  if (lgCode !== 0) say(lgErr.trim().split("\n").slice(-10).map((l) => `    ${l}`).join("\n"));
  say();
}

say(`# tickwire reconnect storm: ${NB} browser + ${NL} loadgen clients, ${new Date().toISOString()}`);
say(`command: node bench/browser/run.mjs ${argv.join(" ")}`.trim());
say(`machine: ${execFileSync("nproc").toString().trim()} cores, ${execFileSync("uname", ["-r"]).toString().trim()}, chromium ${execFileSync("/usr/bin/chromium", ["--version"], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim()}`);
say();
await librarySize();
for (const c of CASES) await runCase(c);
process.exit(0);
