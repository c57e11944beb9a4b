// 5. The connection dropped mid-stream with the server alive (reset by a TCP proxy the
// page connects through): resume with recovered:true, every seq exactly once.
import test from "node:test";
import assert from "node:assert/strict";
import { SKIP, session, openPage, publish, waitIn, snapshotOf, sleep } from "./harness.mjs";

const N = 600; // published while the page listens; two drops in the middle

test("drop mid-stream: recovered:true, every seq exactly once", { skip: SKIP, timeout: 60000 }, async (t) => {
  const s = session(t);
  const srv = await s.server();
  const proxy = await s.proxy(srv.port);
  const browser = await s.browser();
  // The page comes through the proxy too, so that its WebSocket is same-origin.
  const page = await openPage(browser, `http://127.0.0.1:${proxy.port}`);
  const T = "b5.ticks";
  assert.equal(await publish(srv.port, T, { i: 0 }), 1);

  await page.evaluate(
    ([url, T]) => {
      H.make("a", url, { heartbeat: { interval: 1000, timeout: 5000 }, backoff: { base: 100, max: 400 } });
      H.sub("a", T, { snapshot: true });
    },
    [`ws://127.0.0.1:${proxy.port}/ws`, T]
  );
  await waitIn(page, "subscribed", (T) => H.clients.a.subs[T].subscribed.length === 1, T);

  // A publisher at a few hundred messages a second while, twice, the connection is reset
  // and new ones refused for a moment (so that the resume has messages to replay).
  let published = 0;
  const publisher = (async () => {
    for (let i = 1; i <= N; i++) {
      await publish(srv.port, T, { i });
      published = i;
      await sleep(2);
    }
  })();
  const seqNow = () => page.evaluate((T) => H.clients.a.subs[T].msgs.at(-1)?.seq ?? 0, T);
  const drops = [];
  for (let k = 1; k <= 2; k++) {
    const at = (await seqNow()) + 100;
    await waitIn(page, `seq ${at}`, ([T, at]) => (H.clients.a.subs[T].msgs.at(-1)?.seq ?? 0) >= at, [T, at], 10000);
    drops.push({ seq: await seqNow(), published, conns: proxy.drop() });
    proxy.refuse = true;
    await sleep(200);
    proxy.refuse = false;
    await waitIn(page, `resume ${k}`, ([T, n]) => H.clients.a.subs[T].subscribed.length >= n, [T, k + 1], 10000);
  }
  await publisher;
  assert.ok(drops.every((d) => d.published < N), "both drops came mid-stream");
  await waitIn(page, `seq ${N + 1}`, ([T, last]) => H.clients.a.subs[T].msgs.some((m) => m.seq === last), [T, N + 1], 15000);

  const snap = await snapshotOf(page, "a");
  const sub = snap.subs[T];
  const seqs = sub.msgs.map((m) => m.seq);
  assert.deepEqual(seqs, Array.from({ length: N + 1 }, (_, k) => k + 1), "seq 1..N+1, each exactly once, in order");
  assert.ok(sub.msgs.every((m) => m.data.i === m.seq - 1), "data as published");
  assert.equal(sub.gaps.length, 0, `no gap: ${JSON.stringify(sub.gaps)}`);
  assert.equal(sub.subscribed.length, 3, "subscribed once, then once per resume");
  assert.deepEqual(sub.subscribed.slice(1).map((x) => x.recovered), [true, true], "both resumes recovered");
  assert.ok(sub.subscribed.every((x) => x.epoch === sub.subscribed[0].epoch), "one epoch throughout");
  const closes = snap.log.filter((e) => e.ev === "close");
  assert.ok(closes.length >= 2 && closes.every((e) => e.code === 1006), `each reset (and refused attempt) is a 1006 to the page: ${closes.map((e) => e.code)}`);
  const resumes = snap.log.filter((e) => e.ev === "send" && e.type === "subscribe").slice(1).map((e) => JSON.parse(e.data));
  assert.equal(resumes.length, 2);
  assert.ok(resumes.every((r) => Number.isInteger(r.since) && r.epoch === sub.subscribed[0].epoch), `resumes: ${JSON.stringify(resumes)}`);
  // What each resume replayed: the messages after its since delivered up to its subscribed.
  const replayed = resumes.map((r, k) => sub.msgs.filter((m) => m.seq > r.since && m.t <= sub.subscribed[k + 1].t).length);
  assert.ok(replayed.every((n) => n > 0), `each resume replayed what was published while down: ${replayed}`);
  t.diagnostic(`drops at seq ${drops.map((d) => d.seq).join(", ")}; resumed with since ${resumes.map((r) => r.since).join(", ")}, replaying ${replayed.join(", ")} messages; ${closes.length} closes (1006)`);
});
