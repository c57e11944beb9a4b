// 7. 200 clients in one page across a server restart: the 1001 retry hints spread the
// reconnects over the --reconnect-spread window (histogram printed), and all resume.
import test from "node:test";
import assert from "node:assert/strict";
import { SKIP, session, openPage, publish, waitIn, histogram } from "./harness.mjs";

const CLIENTS = 200;
const SPREAD = 3000;
const BUCKET = 250;

test(`${CLIENTS} clients in one page across a restart: spread reconnects, all resume`, { skip: SKIP, timeout: 120000 }, async (t) => {
  const s = session(t);
  const args = ["--reconnect-spread", `${SPREAD}ms`];
  const a = await s.server({ args });
  const browser = await s.browser();
  const page = await openPage(browser, a.url);
  const T = "b7.storm";
  await publish(a.port, T, { from: "a", i: 1 });

  await page.evaluate(
    ([url, T, n]) => {
      for (let i = 0; i < n; i++) {
        H.make(`c${i}`, url, { heartbeat: { interval: 5000, timeout: 15000 }, backoff: { base: 500, max: 4000 } });
        H.sub(`c${i}`, T, { snapshot: true });
      }
    },
    [`ws://127.0.0.1:${a.port}/ws`, T, CLIENTS]
  );
  const allSubscribed = (n) => (args) => Object.values(H.clients).filter((c) => c.subs[args[0]].subscribed.length >= args[1]).length === args[2];
  const t0 = Date.now();
  await waitIn(page, `${CLIENTS} subscribed`, allSubscribed(1), [T, 1, CLIENTS], 30000);
  const upIn = Date.now() - t0;
  const m = await a.metrics();
  assert.ok(m.tickwire_connections >= CLIENTS, `the server holds ${m.tickwire_connections} connections`);

  const termAt = Date.now();
  const exit = await a.stop("SIGTERM");
  assert.equal(exit.code, 0, "the first server drains and exits 0");
  const b = await s.server({ port: a.port, args });
  const listenAt = await page.evaluate(() => performance.now());
  await waitIn(page, `${CLIENTS} resubscribed`, allSubscribed(2), [T, 2, CLIENTS], SPREAD + 20000);
  const resumedIn = Date.now() - termAt;
  await publish(b.port, T, { from: "b", i: 1 });
  await waitIn(page, `${CLIENTS} got the new server's message`,
    ([T, n]) => Object.values(H.clients).filter((c) => c.subs[T].msgs.some((m) => m.data.from === "b")).length === n, [T, CLIENTS], 15000);

  // Per client: the 1001 (code, retry_ms), when its first new socket was made, when the
  // connection that resumed opened; times relative to the first 1001 anyone saw.
  const r = await page.evaluate((T) => {
    const cs = Object.values(H.clients);
    const closeOf = (c) => c.log.find((e) => e.ev === "close");
    const t0 = Math.min(...cs.map((c) => closeOf(c).t));
    H.t0 = t0;
    return cs.map((c) => {
      const close = closeOf(c);
      let retry = null;
      try {
        retry = JSON.parse(close.reason).retry_ms;
      } catch {}
      const create = c.log.find((e) => e.ev === "create" && e.t > close.t);
      const opens = c.log.filter((e) => e.ev === "open" && e.t > close.t);
      const sub = c.subs[T];
      return {
        code: close.code,
        retry,
        closeAt: close.t - t0,
        firstTry: create.t - close.t,
        openAt: opens.at(-1).t - t0,
        createAt: create.t - t0,
        attempts: c.log.filter((e) => e.ev === "create" && e.t > close.t).length,
        recovered: sub.subscribed[1].recovered,
        gaps: sub.gaps.length,
        seqs: sub.msgs.map((m) => `${m.data.from}${m.seq}`).join(","),
      };
    });
  }, T);

  const restartAt = Math.round(listenAt - (await page.evaluate(() => H.t0)));
  assert.equal(r.length, CLIENTS);
  assert.ok(r.every((x) => x.code === 1001), "every client saw 1001");
  assert.ok(r.every((x) => Number.isInteger(x.retry) && x.retry >= 0 && x.retry <= SPREAD), "every retry_ms inside the spread");
  assert.ok(r.every((x) => x.firstTry >= x.retry - 20 && x.firstTry <= x.retry + 1500), "each client waited its own retry_ms",
  );
  // Every client resumed: the old epoch is gone, so snapshot + gap, then the new message.
  assert.ok(r.every((x) => x.recovered === false && x.gaps === 1), "each resume reports the new epoch");
  assert.ok(r.every((x) => x.seqs === "a1,b1"), `each client got a1 then b1, once: ${[...new Set(r.map((x) => x.seqs))]}`);

  const hints = histogram(r.map((x) => x.retry), BUCKET, 0, SPREAD - 1);
  const opens = histogram(r.map((x) => x.openAt), BUCKET, 0);
  t.diagnostic(`retry_ms handed out by the server (${CLIENTS} clients, --reconnect-spread ${SPREAD} ms):`);
  for (const line of hints.lines) t.diagnostic(line);
  t.diagnostic(`reconnected (open), ms after the first 1001 (the new server listened after ${restartAt} ms):`);
  for (const line of opens.lines) t.diagnostic(line);
  const lag = r.map((x) => x.openAt - x.createAt).sort((p, q) => p - q);
  t.diagnostic(`first new socket made -> open: median ${lag[lag.length >> 1].toFixed(0)} ms, max ${lag.at(-1).toFixed(0)} ms`);
  t.diagnostic(`phases: ${CLIENTS} connected and subscribed in ${upIn} ms; all resumed ${resumedIn} ms after SIGTERM`);
  const retried = r.filter((x) => x.attempts > 1).length;
  t.diagnostic(`${retried} clients came back before the new server listened and retried with backoff; last open ${Math.max(...r.map((x) => x.openAt)).toFixed(0)} ms after the first 1001`);

  // Spread, with slack: uniform over 12 buckets gives ~17 each.
  const nonEmpty = hints.counts.filter((k) => k > 0).length;
  assert.ok(nonEmpty >= 10, `retry hints cover the window: ${nonEmpty} of ${hints.counts.length} buckets used`);
  assert.ok(Math.max(...hints.counts) <= CLIENTS * 0.25, `no bucket holds more than a quarter: ${hints.counts}`);
  assert.ok(Math.max(...opens.counts) <= CLIENTS * 0.3, `reconnects spread, not in one burst: ${opens.counts}`);
  const span = Math.max(...r.map((x) => x.openAt)) - Math.min(...r.map((x) => x.openAt));
  assert.ok(span >= SPREAD / 2, `reconnects span ${span.toFixed(0)} ms`);
});
