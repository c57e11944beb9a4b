// Resume with the server alive: connections cut mid-stream (through a proxy) resume with
// recovered:true and deliver every seq exactly once; a seq jump from the server's
// conflation (a slow reader) is recovered with `since` on the same connection; what the
// history no longer holds is reported as a gap, exactly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Tickwire } from '../../src/js/tickwire.js';
import { startServer, startProxy, rawClient, recordStates, collect, spyWebSocket, until, sleep } from './helpers.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

/** Publishes `n` messages to `topic` over a raw connection, `every` ms apart (0: at once). */
async function publishMany(pub, topic, n, { every = 0, size = 0 } = {}) {
  const pad = 'x'.repeat(size);
  for (let i = 1; i <= n; i++) {
    pub.send({ type: 'publish', topic, data: { i, pad }, id: `${topic}-${i}` });
    if (every) await sleep(every);
  }
  await pub.next((m) => m.type === 'published' && m.id === `${topic}-${n}`, 20000);
}

test('cut three times mid-stream: recovered:true each time, every seq exactly once', { timeout: 20000 }, async (t) => {
  const srv = await startServer([]);
  cleanup.push(() => srv.stop());
  const proxy = await startProxy(srv.port);
  cleanup.push(() => proxy.close());
  const spy = spyWebSocket();
  const tw = new Tickwire(proxy.url, {
    WebSocket: spy.WebSocket,
    heartbeat: { interval: 200, timeout: 600 },
    backoff: { base: 50, max: 200 },
  });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const sub = tw.subscribe('cut.a');
  const c = collect(sub);
  await until(() => sub.state === 'live');
  const pub = await rawClient(srv.url);
  cleanup.push(() => pub.close());

  const N = 600;
  const done = publishMany(pub, 'cut.a', N, { every: 2 });
  for (let k = 0; k < 3; k++) {
    await sleep(250);
    const before = c.msgs.length;
    proxy.sever();
    await states.next('reconnecting');
    await states.next('open', 3000);
    t.diagnostic(`cut ${k + 1} after ${before} messages`);
  }
  await done;
  await until(() => c.msgs.length >= N, 5000, `${N} messages`);
  await sleep(100);
  assert.deepEqual(c.seqs(), Array.from({ length: N }, (_, i) => i + 1));
  assert.deepEqual(c.msgs.map((m) => m.data.i), c.seqs());
  assert.deepEqual(c.gaps, []);
  assert.deepEqual(c.subscribed.map((s) => s.recovered), [undefined, true, true, true]);
  // Each resubscribe asked for exactly what it had: since = the last delivered seq.
  const resumes = spy.sent.filter((f) => f.type === 'subscribe' && 'since' in f);
  assert.equal(resumes.length, 3);
  for (const f of resumes) assert.equal(f.epoch, sub.epoch);
  tw.close();
});

/** A subscriber behind a stalled proxy while `n` messages of `size` bytes are published. */
async function slowReader(flags, n, size) {
  const srv = await startServer(['--max-queue', '64KiB', ...flags]);
  cleanup.push(() => srv.stop());
  const proxy = await startProxy(srv.port);
  cleanup.push(() => proxy.close());
  const spy = spyWebSocket();
  const tw = new Tickwire(proxy.url, { WebSocket: spy.WebSocket, heartbeat: { interval: 1000, timeout: 5000 } });
  cleanup.push(() => tw.close());
  const sub = tw.subscribe('slow.a');
  const c = collect(sub);
  await until(() => sub.state === 'live');
  const pub = await rawClient(srv.url);
  cleanup.push(() => pub.close());
  proxy.stall();
  await publishMany(pub, 'slow.a', n, { size });
  proxy.resume();
  return { srv, tw, spy, sub, c };
}

test('a seq jump (the server conflated a slow reader) is recovered with since, no gap', { timeout: 20000 }, async (t) => {
  const N = 3000;
  const { tw, spy, sub, c } = await slowReader(['--history', '4096'], N, 4000);
  await until(() => sub.seq === N && sub.state === 'live', 10000, `seq ${N}`);
  await sleep(100);
  const recoveries = spy.sent.filter((f) => f.type === 'subscribe' && 'since' in f);
  t.diagnostic(`recoveries with since: ${recoveries.map((f) => f.since).join(', ')}`);
  assert.ok(recoveries.length >= 1, 'the server did not conflate: no jump seen (raise N?)');
  assert.equal(spy.sockets.length, 1, 'recovered on the same connection');
  assert.deepEqual(c.seqs(), Array.from({ length: N }, (_, i) => i + 1));
  assert.deepEqual(c.gaps, []);
  assert.ok(c.subscribed.slice(1).every((s) => s.recovered === true));
  tw.close();
});

test('jumps the history cannot cover: gaps name exactly the missing seqs', { timeout: 20000 }, async (t) => {
  const N = 3000;
  const { tw, spy, sub, c } = await slowReader(['--history', '16'], N, 4000);
  await until(() => sub.seq === N && sub.state === 'live', 10000, `seq ${N}`);
  await sleep(100);
  assert.equal(spy.sockets.length, 1);
  assert.ok(c.gaps.length >= 1, 'no gap reported');
  t.diagnostic(`gaps: ${JSON.stringify(c.gaps.map((g) => [g.from, g.to]))}, delivered ${c.msgs.length}`);
  // Delivered seqs increase; delivered and gaps together are 1..N, each seq once.
  const seen = new Array(N + 1).fill(0);
  let prev = 0;
  for (const s of c.seqs()) {
    assert.ok(s > prev, `out of order: ${s} after ${prev}`);
    prev = s;
    seen[s]++;
  }
  for (const g of c.gaps) {
    assert.equal(g.reason, 'history');
    assert.equal(g.epoch, sub.epoch);
    for (let s = g.from; s <= g.to; s++) seen[s]++;
  }
  assert.deepEqual(seen.slice(1), new Array(N).fill(1));
  assert.equal(c.subscribed.at(-1).recovered, false);
  tw.close();
});
