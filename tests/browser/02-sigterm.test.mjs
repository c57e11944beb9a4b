// 2. SIGTERM: the page sees 1001 with retry_ms, waits it, reconnects to a new server on the
// same port and resumes with no message lost.
import test from "node:test";
import assert from "node:assert/strict";
import { SKIP, session, openPage, publish, waitIn, snapshotOf } from "./harness.mjs";

const SPREAD = 2000;

test("SIGTERM: 1001 + retry_ms honoured, reconnect, resume", { skip: SKIP, timeout: 60000 }, async (t) => {
  const s = session(t);
  const args = ["--reconnect-spread", `${SPREAD}ms`, "--drain-timeout", "3s"];
  const a = await s.server({ args });
  const browser = await s.browser();
  const page = await openPage(browser, a.url);
  const ws = `ws://127.0.0.1:${a.port}/ws`;
  const T = "b2.ticks";

  await page.evaluate(
    ([url, T]) => {
      H.make("a", url, { heartbeat: { interval: 1000, timeout: 5000 }, backoff: { base: 200, max: 2000 } });
      H.sub("a", T, { snapshot: true });
    },
    [ws, T]
  );
  await waitIn(page, "subscribed", (T) => H.clients.a.subs[T].subscribed.length === 1, T);
  for (let i = 1; i <= 20; i++) await publish(a.port, T, { i, from: "a" });
  await waitIn(page, "seq 20 from the first server", (T) => H.clients.a.subs[T].msgs.some((m) => m.seq === 20), T);

  // SIGTERM: every client gets 1001 Going Away with a retry hint, the server exits 0.
  const exit = await a.stop("SIGTERM");
  assert.equal(exit.code, 0, `the first server exits 0 after its drain: ${a.lines.join("\n")}`);
  const b = await s.server({ port: a.port, args });

  const first = await waitIn(page, "the reconnect attempt after the 1001", () => {
    const log = H.clients.a.log;
    const i = log.findIndex((e) => e.ev === "close");
    return i >= 0 && log.slice(i).some((e) => e.ev === "create") ? true : false;
  }, null, SPREAD + 5000);
  assert.ok(first);
  await waitIn(page, "open on the new server", () => H.clients.a.states.filter((x) => x.state === "open").length >= 2, null, 10000);
  await waitIn(page, "resubscribed", (T) => H.clients.a.subs[T].subscribed.length >= 2, T, 5000);
  for (let i = 1; i <= 10; i++) await publish(b.port, T, { i, from: "b" });
  await waitIn(page, "seq 10 from the new server", (T) => {
    const m = H.clients.a.subs[T].msgs;
    return m.length && m[m.length - 1].data.from === "b" && m[m.length - 1].seq === 10;
  }, T);

  const snap = await snapshotOf(page, "a");
  const close = snap.log.find((e) => e.ev === "close");
  assert.equal(close.code, 1001, "the browser saw 1001 Going Away");
  const hint = JSON.parse(close.reason);
  assert.ok(Number.isInteger(hint.retry_ms) && hint.retry_ms >= 0 && hint.retry_ms <= SPREAD, `retry_ms ${close.reason} within --reconnect-spread`);
  const rec = snap.states.find((x) => x.state === "reconnecting");
  assert.equal(rec.info.code, 1001, "state reconnecting says 1001");
  assert.equal(rec.info.delay, hint.retry_ms, "the library waits the server's retry_ms, not its own backoff");
  const next = snap.log.find((e) => e.ev === "create" && e.t > close.t);
  const waited = next.t - close.t;
  assert.ok(waited >= hint.retry_ms - 20 && waited <= hint.retry_ms + 1000, `next attempt ${waited.toFixed(0)} ms after the close, hint ${hint.retry_ms} ms`);
  t.diagnostic(`1001 reason ${close.reason}; next attempt after ${waited.toFixed(0)} ms`);

  // Every message each server accepted was delivered exactly once, in order: 1..20 of the
  // first epoch, then 1..10 of the new one. A new process is a new epoch, so the library
  // must say so (recovered:false and a gap with reason "epoch", to: null): it cannot know
  // whether the old server had more to say.
  const sub = snap.subs[T];
  const got = sub.msgs.map((m) => `${m.data.from}${m.seq}`);
  const want = [...Array.from({ length: 20 }, (_, k) => `a${k + 1}`), ...Array.from({ length: 10 }, (_, k) => `b${k + 1}`)];
  assert.deepEqual(got, want, "no message lost or repeated across the restart");
  assert.ok(sub.msgs.every((m) => m.data.i === m.seq));
  const [s1, s2] = sub.subscribed;
  assert.notEqual(s2.epoch, s1.epoch, "the new server has a new epoch");
  assert.equal(s2.recovered, false, "a since from another epoch is not recovered");
  assert.equal(sub.gaps.length, 1, `one gap event: ${JSON.stringify(sub.gaps)}`);
  assert.equal(sub.gaps[0].from, 21);
  assert.equal(sub.gaps[0].to, null);
  assert.equal(sub.gaps[0].reason, "epoch");
  const resume = snap.log.find((e) => e.ev === "send" && e.type === "subscribe" && e.t > close.t);
  const rq = JSON.parse(resume.data);
  assert.equal(rq.since, 20, "the resume asks for what follows seq 20");
  assert.equal(rq.epoch, s1.epoch, "of the epoch it was delivered in");
});
