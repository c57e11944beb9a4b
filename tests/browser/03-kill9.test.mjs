// 3. kill -9 and restart: 1006, backoff attempts inside their full-jitter bounds, then
// recovered:false (a new epoch) -> snapshot and a gap event.
import test from "node:test";
import assert from "node:assert/strict";
import { SKIP, session, openPage, publish, waitIn, snapshotOf, sleep } from "./harness.mjs";

const BASE = 200;
const MAX = 1600;

test("kill -9: 1006, full-jitter backoff, new epoch -> snapshot + gap", { skip: SKIP, timeout: 60000 }, async (t) => {
  const s = session(t);
  const a = await s.server();
  const browser = await s.browser();
  const page = await openPage(browser, a.url);
  const T = "b3.ticks";

  await page.evaluate(
    ([url, T, base, max]) => {
      H.make("a", url, { heartbeat: { interval: 1000, timeout: 5000 }, backoff: { base, max } });
      H.sub("a", T, { snapshot: true });
    },
    [`ws://127.0.0.1:${a.port}/ws`, T, BASE, MAX]
  );
  await waitIn(page, "subscribed", (T) => H.clients.a.subs[T].subscribed.length === 1, T);
  for (let i = 1; i <= 5; i++) await publish(a.port, T, { i, from: "a" });
  await waitIn(page, "seq 5", (T) => H.clients.a.subs[T].msgs.some((m) => m.seq === 5), T);

  await a.stop("SIGKILL");
  // The server stays down for at least four failed attempts; it comes back while the
  // library waits out a delay long enough to start it and publish before the next try,
  // so that the resume finds a last value to send as the snapshot.
  const rec = (n) => `H.clients.a.states.filter((x) => x.state === "reconnecting").length >= ${n}`;
  await waitIn(page, "four reconnect attempts", rec(5), null, 20000);
  let b = null;
  const end = Date.now() + 20000;
  while (!b && Date.now() < end) {
    const left = await page.evaluate(() => {
      const st = H.clients.a.states;
      const last = st[st.length - 1];
      return last.state === "reconnecting" ? last.t + last.info.delay - performance.now() : 0;
    });
    if (left >= 300) b = await s.server({ port: a.port });
    else await sleep(20);
  }
  assert.ok(b, "a long enough backoff delay came up");
  for (let i = 1; i <= 3; i++) await publish(b.port, T, { i, from: "b" });
  await waitIn(page, "open on the new server", () => H.clients.a.states.filter((x) => x.state === "open").length >= 2, null, 10000);
  await waitIn(page, "resubscribed", (T) => H.clients.a.subs[T].subscribed.length >= 2, T, 5000);
  await publish(b.port, T, { i: 4, from: "b" });
  await waitIn(page, "seq 4 of the new server", (T) => H.clients.a.subs[T].msgs.some((m) => m.data.from === "b" && m.seq === 4), T);

  const snap = await snapshotOf(page, "a");
  const firstClose = snap.log.find((e) => e.ev === "close");
  assert.equal(firstClose.code, 1006, "kill -9: the browser sees 1006");
  const recs = snap.states.filter((x) => x.state === "reconnecting");
  assert.equal(recs[0].info.code, 1006);
  const lines = [];
  for (let k = 0; k < recs.length; k++) {
    const { attempt, delay } = recs[k].info;
    assert.equal(attempt, k + 1, "attempts count up by one");
    const cap = Math.min(MAX, BASE * 2 ** (attempt - 1));
    assert.ok(delay >= 0 && delay <= cap, `attempt ${attempt}: delay ${delay} inside [0, ${cap}]`);
    // The socket of that attempt is created when its delay has passed, not before.
    const created = snap.log.find((e) => e.ev === "create" && e.t > recs[k].t);
    const waited = created.t - recs[k].t;
    assert.ok(waited >= delay - 20 && waited <= delay + 500, `attempt ${attempt}: waited ${waited.toFixed(0)} ms for a delay of ${delay}`);
    lines.push(`attempt ${attempt}: delay ${delay} ms of [0, ${cap}], socket after ${waited.toFixed(0)} ms`);
  }
  assert.ok(new Set(recs.map((x) => x.info.delay)).size > 1, "the delays are jittered");
  t.diagnostic(lines.join("; "));

  // The resume asked for since 5 in the old epoch; the new server answers recovered:false,
  // the library delivers the snapshot (seq 3 of the new epoch) and reports a gap.
  const sub = snap.subs[T];
  const [s1, s2] = sub.subscribed;
  assert.notEqual(s2.epoch, s1.epoch);
  assert.equal(s2.recovered, false);
  assert.equal(s2.seq, 3);
  assert.deepEqual(sub.gaps.map(({ from, to, reason }) => ({ from, to, reason })), [{ from: 6, to: null, reason: "epoch" }]);
  const got = sub.msgs.map((m) => `${m.data.from}${m.seq}`);
  assert.deepEqual(got, ["a1", "a2", "a3", "a4", "a5", "b3", "b4"], "the snapshot of the new epoch, then live");
  assert.ok(sub.msgs.slice(5).every((m) => m.epoch === s2.epoch), "new messages carry the new epoch");
});
