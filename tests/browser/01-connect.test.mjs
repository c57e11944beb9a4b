// 1. Connect, pong RTT, subscribe with snapshot, receive published ticks in order.
import test from "node:test";
import assert from "node:assert/strict";
import { SKIP, session, openPage, publish, waitIn, snapshotOf } from "./harness.mjs";

test("connect, pong RTT, snapshot subscribe, ticks in order", { skip: SKIP, timeout: 60000 }, async (t) => {
  const s = session(t);
  const srv = await s.server();
  const browser = await s.browser();
  const page = await openPage(browser, srv.url);
  const ws = `ws://127.0.0.1:${srv.port}/ws`;

  // Three messages before anyone subscribes: the snapshot is the last of them.
  for (let i = 1; i <= 3; i++) assert.equal(await publish(srv.port, "b1.ticks", { i }), i);

  await page.evaluate((url) => {
    H.make("a", url, { heartbeat: { interval: 300, timeout: 3000 }, backoff: { base: 100, max: 1000 } });
    H.sub("a", "b1.ticks", { snapshot: true });
  }, ws);
  await waitIn(page, "open", () => H.clients.a.states.some((x) => x.state === "open"));
  await waitIn(page, "subscribed", () => H.clients.a.subs["b1.ticks"].subscribed.length === 1);

  // Heartbeat: app pings answered with pongs echoing the time; the library's RTT.
  await waitIn(page, "three pongs", () => H.clients.a.log.filter((e) => e.ev === "recv" && e.type === "pong").length >= 3, null, 5000);

  for (let i = 4; i <= 53; i++) await publish(srv.port, "b1.ticks", { i });
  await waitIn(page, "seq 53", () => H.clients.a.subs["b1.ticks"].msgs.some((m) => m.seq === 53));

  const snap = await snapshotOf(page, "a");
  const states = snap.states.map((x) => x.state);
  assert.equal(states[0], "connecting", `first state: ${states}`);
  assert.ok(states.includes("open"), `states: ${states}`);
  assert.ok(!states.includes("reconnecting"), `no reconnect expected: ${states}`);

  const sub = snap.subs["b1.ticks"];
  assert.equal(sub.subscribed[0].seq, 3, "subscribed carries the topic's last seq");
  assert.equal(typeof sub.subscribed[0].epoch, "string", "subscribed carries an epoch");
  assert.deepEqual(sub.msgs[0].data, { i: 3 }, "the snapshot (last value) comes first");
  assert.deepEqual(sub.msgs.map((m) => m.seq), Array.from({ length: 51 }, (_, k) => k + 3), "seq 3..53, once each, in order");
  assert.deepEqual(sub.msgs.map((m) => m.data.i), Array.from({ length: 51 }, (_, k) => k + 3), "data as published");
  assert.ok(sub.msgs.every((m) => m.topic === "b1.ticks" && m.epoch === sub.subscribed[0].epoch), "topic and epoch on each message");

  // Each pong answers a ping sent before it with the same time; the wire RTT is small.
  const sent = new Map();
  const rtts = [];
  for (const e of snap.log) {
    if (e.ev === "send" && e.type === "ping") sent.set(JSON.stringify(JSON.parse(e.data).time), e.t);
    if (e.ev === "recv" && e.type === "pong") {
      const key = JSON.stringify(JSON.parse(e.data).time);
      assert.ok(sent.has(key), `pong ${e.data} answers a ping sent`);
      rtts.push(e.t - sent.get(key));
    }
  }
  assert.ok(rtts.length >= 3);
  assert.ok(rtts.every((r) => r >= 0 && r < 1000), `wire RTTs ${rtts}`);
  const libRtt = await page.evaluate(() => {
    const c = H.clients.a;
    const ev = c.events.rtt || c.events.pong;
    if (ev && ev.length) {
      const a = ev[ev.length - 1].args[0];
      return typeof a === "number" ? a : a && (a.rtt ?? a.ms);
    }
    return typeof c.tw.rtt === "number" ? c.tw.rtt : null;
  });
  assert.equal(typeof libRtt, "number", "the library exposes the heartbeat RTT");
  assert.ok(libRtt >= 0 && libRtt < 1000, `library RTT ${libRtt} ms`);
  t.diagnostic(`wire RTTs (ms): ${rtts.map((r) => r.toFixed(2)).join(" ")}; library RTT ${libRtt} ms`);
});
