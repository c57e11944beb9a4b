// Server restarts: SIGTERM (Close 1001 with {"retry_ms":R}: wait R, resume, no gap) and
// kill -9 (1006: full-jitter backoff inside its windows, then a new epoch: snapshot + gap).
// The client reaches the server through a proxy, so the restarted server can take any
// port and the test decides when it becomes reachable.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Tickwire } from '../../src/js/tickwire.js';
import { startServer, startProxy, httpPublish, recordStates, collect, until, sleep, WebSocket } from './helpers.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

test('SIGTERM: 1001 with retry_ms is waited exactly, then the topic resumes, no message lost', { timeout: 20000 }, async (t) => {
  let a = await startServer(['--reconnect-spread', '1500ms', '--drain-timeout', '1s']);
  const proxy = await startProxy(a.port);
  cleanup.push(() => proxy.close());
  const tw = new Tickwire(proxy.url, {
    WebSocket,
    heartbeat: { interval: 200, timeout: 600 },
    backoff: { base: 100, max: 400 },
  });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const sub = tw.subscribe('term.a', { snapshot: true });
  const c = collect(sub);
  await until(() => sub.state === 'live');
  for (let i = 1; i <= 5; i++) await httpPublish(a, 'term.a', { i });
  await until(() => c.msgs.length === 5);
  const epoch1 = sub.epoch;

  // A queued publish rides across the restart too.
  a.signal('SIGTERM');
  const rec = await states.next('reconnecting');
  assert.equal(rec.info.code, 1001);
  const R = JSON.parse(rec.info.reason).retry_ms;
  assert.ok(R >= 0 && R <= 1500, `retry_ms ${R}`);
  assert.equal(rec.info.delay, R, 'the hint replaces the backoff');
  assert.equal(rec.info.attempt, 1);
  assert.equal(await a.exited, 0);
  const pending = tw.publish('term.a', { i: 'queued' });

  const b = await startServer(['--drain-timeout', '1s']);
  cleanup.push(() => b.stop());
  proxy.setTarget(b.port);
  const conn = await states.next('connecting', 5000);
  const waited = conn.t - rec.t;
  t.diagnostic(`retry_ms ${R}: next attempt after ${waited} ms`);
  assert.ok(waited >= R - 2 && waited <= R + 100, `waited ${waited} ms for retry_ms ${R}`);
  await states.next('open', 5000);
  // The new server is a new incarnation: recovered:false and a new epoch. Every message
  // each server accepted arrives once, in order; that the old epoch had nothing after
  // seq 5 nobody can prove, so that is one gap to an unknown end.
  await until(() => c.subscribed.length === 2, 3000, 'resubscribed');
  assert.equal(c.subscribed[1].recovered, false);
  assert.notEqual(sub.epoch, epoch1);
  assert.deepEqual(await pending, { seq: 1, duplicate: false });
  for (let i = 2; i <= 4; i++) await httpPublish(b, 'term.a', { i: 'b' + i });
  await until(() => c.msgs.length === 9);
  assert.deepEqual(c.gaps, [{ from: 6, to: null, epoch: epoch1, reason: 'epoch' }]);
  assert.deepEqual(c.msgs.map((m) => m.data.i), [1, 2, 3, 4, 5, 'queued', 'b2', 'b3', 'b4']);
  assert.deepEqual(c.seqs(), [1, 2, 3, 4, 5, 1, 2, 3, 4]);
  assert.ok(c.msgs.slice(5).every((m) => m.epoch === sub.epoch));
  tw.close();
  a = null;
});

test('kill -9: backoff inside its full-jitter windows, then new epoch: snapshot and gap', { timeout: 20000 }, async (t) => {
  const a = await startServer([]);
  const proxy = await startProxy(a.port);
  cleanup.push(() => proxy.close());
  const base = 100;
  const max = 800;
  const tw = new Tickwire(proxy.url, {
    WebSocket,
    heartbeat: { interval: 200, timeout: 600 },
    backoff: { base, max },
  });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const sub = tw.subscribe('kill.a');
  const c = collect(sub);
  await until(() => sub.state === 'live');
  for (let i = 1; i <= 3; i++) await httpPublish(a, 'kill.a', { i });
  await until(() => c.msgs.length === 3);
  const epoch1 = sub.epoch;

  a.signal('SIGKILL');
  await a.exited;
  proxy.setTarget(null); // the port is dead: every attempt fails at once
  // Let five attempts fail; each delay must lie in [0, min(max, base * 2^(n-1))).
  for (let n = 1; n <= 5; n++) {
    const r = await states.next('reconnecting', 5000);
    assert.equal(r.info.attempt, n);
    assert.equal(r.info.code, 1006);
    const cap = Math.min(max, base * 2 ** (n - 1));
    assert.ok(r.info.delay >= 0 && r.info.delay < cap, `attempt ${n}: delay ${r.info.delay} not in [0, ${cap})`);
    const conn = await states.next('connecting', 5000);
    const waited = conn.t - r.t;
    assert.ok(waited >= r.info.delay - 2 && waited <= r.info.delay + 100, `attempt ${n}: waited ${waited}, delay ${r.info.delay}`);
    t.diagnostic(`attempt ${n}: delay ${r.info.delay} in [0, ${cap}), waited ${waited} ms`);
  }

  // The server comes back (a new process: new epochs) with two new messages.
  const b = await startServer([]);
  cleanup.push(() => b.stop());
  await httpPublish(b, 'kill.a', { i: 'b1' });
  await httpPublish(b, 'kill.a', { i: 'b2' });
  proxy.setTarget(b.port);
  await states.next('open', 5000);
  await until(() => c.subscribed.length === 2, 3000, 'resubscribed');
  assert.equal(c.subscribed[1].recovered, false);
  const epoch2 = sub.epoch;
  assert.notEqual(epoch2, epoch1);
  // What the old epoch had after seq 3 is unknown: one gap; the new epoch starts from its
  // snapshot (seq 2, the last value), as a first subscribe would.
  assert.deepEqual(c.gaps, [{ from: 4, to: null, epoch: epoch1, reason: 'epoch' }]);
  assert.deepEqual(c.msgs.map((m) => [m.epoch === epoch1 ? 1 : 2, m.seq, m.data.i]), [
    [1, 1, 1],
    [1, 2, 2],
    [1, 3, 3],
    [2, 2, 'b2'],
  ]);
  await httpPublish(b, 'kill.a', { i: 'b3' });
  await until(() => c.msgs.length === 5);
  assert.equal(c.msgs[4].seq, 3);
  tw.close();
});

test('the attempt counter resets once a connection stayed open resetAfter ms', { timeout: 20000 }, async () => {
  const a = await startServer([]);
  cleanup.push(() => a.stop());
  const proxy = await startProxy(a.port);
  cleanup.push(() => proxy.close());
  const tw = new Tickwire(proxy.url, {
    WebSocket,
    heartbeat: { interval: 200, timeout: 600 },
    backoff: { base: 20, max: 100, resetAfter: 300 },
  });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  await states.next('open');
  // Cut at once, twice: the counter grows (the connections were not stable).
  proxy.sever();
  assert.equal((await states.next('reconnecting')).info.attempt, 1);
  await states.next('open');
  proxy.sever();
  assert.equal((await states.next('reconnecting')).info.attempt, 2);
  await states.next('open');
  await sleep(400); // stable now
  proxy.sever();
  assert.equal((await states.next('reconnecting')).info.attempt, 1);
  await states.next('open');
  tw.close();
});
