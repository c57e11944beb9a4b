// Connect, heartbeat RTT, subscribe with snapshot, ordered delivery, publish acks and
// idempotency, several handles on a topic, listener errors, the served file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tickwire, TickwireError } from '../../src/js/tickwire.js';
import { startServer, httpPublish, recordStates, collect, until, sleep, WebSocket, LIB, rawClient } from './helpers.mjs';

let srv;
before(async () => {
  srv = await startServer(['--workers', '2']);
});
after(async () => {
  await srv.stop();
});

const opts = (extra = {}) => ({ WebSocket, heartbeat: { interval: 200, timeout: 600 }, ...extra });

test('connects: connecting then open, tickwire.v1 selected, pings measure the RTT', { timeout: 20000 }, async () => {
  const tw = new Tickwire(srv.url, opts());
  const states = recordStates(tw);
  const pongs = [];
  tw.on('pong', (p) => pongs.push({ ...p, at: Date.now() }));
  const open = await states.next('open');
  assert.equal(states.list[0].state, 'connecting');
  assert.equal(open.info.protocol, 'tickwire.v1');
  await sleep(1050);
  // One ping at open, then one per 200 ms interval.
  assert.ok(pongs.length >= 5 && pongs.length <= 7, `pongs in 1 s: ${pongs.length}`);
  for (const p of pongs) assert.ok(p.rtt >= 0 && p.rtt < 100, `rtt ${p.rtt}`);
  assert.equal(tw.rtt, pongs.at(-1).rtt);
  assert.equal(tw.info.protocol, 'tickwire.v1');
  for (let i = 2; i < pongs.length; i++) {
    const gap = pongs[i].at - pongs[i - 1].at;
    assert.ok(gap > 150 && gap < 300, `ping cadence ${gap} ms`);
  }
  tw.close();
  assert.equal(tw.state, 'closed');
  assert.equal(states.list.at(-1).info.code, 1000);
});

test('subscribe with snapshot: the last value first, then every message once, in order', { timeout: 20000 }, async () => {
  for (let i = 1; i <= 3; i++) await httpPublish(srv, 'snap.a', { i });
  const tw = new Tickwire(srv.url, opts());
  const sub = tw.subscribe('snap.a', { snapshot: true });
  const c = collect(sub);
  await until(() => c.subscribed.length === 1, 3000, 'subscribed');
  assert.deepEqual(c.msgs.map((m) => m.data), [{ i: 3 }]);
  assert.equal(c.msgs[0].seq, 3);
  assert.match(c.msgs[0].epoch, /^[0-9a-f]{16}$/);
  assert.equal(c.subscribed[0].seq, 3);
  assert.equal(c.subscribed[0].recovered, undefined);
  assert.equal(sub.state, 'live');
  for (let i = 4; i <= 60; i++) await httpPublish(srv, 'snap.a', { i });
  await until(() => c.msgs.length === 58, 3000, '58 messages');
  assert.deepEqual(c.seqs(), Array.from({ length: 58 }, (_, k) => k + 3));
  assert.equal(c.gaps.length, 0);
  // Without snapshot: nothing until the next publish.
  const plain = collect(tw.subscribe('snap.a'));
  await sleep(50);
  assert.equal(plain.msgs.length, 0);
  assert.equal(plain.subscribed.length, 1);
  await httpPublish(srv, 'snap.a', { i: 61 });
  await until(() => plain.msgs.length === 1 && c.msgs.length === 59);
  tw.close();
});

test('publish resolves {seq, duplicate}; the same id is applied once', { timeout: 20000 }, async () => {
  const tw = new Tickwire(srv.url, opts());
  const c = collect(tw.subscribe('pub.a'));
  await until(() => c.subscribed.length === 1);
  const a = await tw.publish('pub.a', { px: 1 });
  const b = await tw.publish('pub.a', { px: 2 }, { id: 'order-42' });
  const again = await tw.publish('pub.a', { px: 2 }, { id: 'order-42' });
  assert.deepEqual(a, { seq: 1, duplicate: false });
  assert.deepEqual(b, { seq: 2, duplicate: false });
  assert.deepEqual(again, { seq: 2, duplicate: true });
  await until(() => c.msgs.length === 2);
  await sleep(50);
  assert.deepEqual(c.msgs.map((m) => m.data), [{ px: 1 }, { px: 2 }]);
  // Bad arguments reject (publish) or throw (subscribe) with a code, synchronously known.
  await assert.rejects(tw.publish('bad topic', 1), { code: 'bad_topic' });
  await assert.rejects(tw.publish('pub.a', undefined), { code: 'bad_data' });
  await assert.rejects(tw.publish('pub.a', 1, { id: 'no spaces' }), { code: 'bad_id' });
  assert.throws(() => tw.subscribe('a/b'), (e) => e instanceof TickwireError && e.code === 'bad_topic');
  tw.close();
  await assert.rejects(tw.publish('pub.a', 1), { code: 'closed' });
});

test('publish ids are random and within the server alphabet', { timeout: 20000 }, async () => {
  const { spyWebSocket } = await import('./helpers.mjs');
  const spy = spyWebSocket();
  const tw = new Tickwire(srv.url, opts({ WebSocket: spy.WebSocket }));
  await Promise.all([tw.publish('ids', 1), tw.publish('ids', 2), tw.publish('ids', 3)]);
  const ids = spy.sent.filter((f) => f.type === 'publish').map((f) => f.id);
  assert.equal(new Set(ids).size, 3);
  for (const id of ids) assert.match(id, /^[A-Za-z0-9._:-]{1,64}$/);
  tw.close();
});

test('several handles share a topic; unsubscribe stops one, the last ends it', { timeout: 20000 }, async () => {
  const spy = (await import('./helpers.mjs')).spyWebSocket();
  const tw = new Tickwire(srv.url, opts({ WebSocket: spy.WebSocket }));
  const s1 = tw.subscribe('share.a');
  const c1 = collect(s1);
  await until(() => c1.subscribed.length);
  await tw.publish('share.a', 'x');
  await until(() => c1.msgs.length === 1);
  const s2 = tw.subscribe('share.a', { snapshot: true });
  const c2 = collect(s2);
  await until(() => c2.subscribed.length);
  assert.deepEqual(c2.msgs.map((m) => m.data), ['x']); // the library's last value
  await tw.publish('share.a', 'y');
  await until(() => c1.msgs.length === 2 && c2.msgs.length === 2);
  s1.unsubscribe();
  assert.equal(s1.state, 'closed');
  await tw.publish('share.a', 'z');
  await until(() => c2.msgs.length === 3);
  assert.equal(c1.msgs.length, 2);
  assert.equal(spy.sent.filter((f) => f.type === 'subscribe').length, 1);
  s2.unsubscribe();
  await until(() => spy.sent.some((f) => f.type === 'unsubscribe' && f.topic === 'share.a'));
  tw.close();
});

test('a listener that throws is reported as an error event, delivery goes on', { timeout: 20000 }, async () => {
  const tw = new Tickwire(srv.url, opts());
  const errors = [];
  tw.on('error', (e) => errors.push(e));
  tw.on('error', () => {
    throw new Error('error listeners may throw too');
  });
  const got = [];
  const sub = tw.subscribe('throw.a', () => {
    throw new Error('boom');
  });
  sub.on('message', (m) => got.push(m.seq));
  tw.on('state', () => {
    throw new Error('state boom');
  });
  await until(() => sub.state === 'live');
  await tw.publish('throw.a', 1);
  await tw.publish('throw.a', 2);
  await until(() => got.length === 2);
  assert.deepEqual(got, [1, 2]);
  const codes = errors.map((e) => e.code);
  assert.ok(codes.every((c) => c === 'listener'), codes.join());
  assert.ok(errors.some((e) => e.event === 'message' && e.cause.message === 'boom'));
  assert.ok(errors.some((e) => e.event === 'state' && e.cause.message === 'state boom'));
  tw.close();
});

test('GET /tickwire.js serves this file', { timeout: 20000 }, async () => {
  const r = await fetch(`${srv.http}/tickwire.js`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/javascript/);
  assert.ok(r.headers.get('etag'));
  const body = await r.text();
  assert.equal(body, readFileSync(LIB, 'utf8'), 'rebuild the server: it embeds src/js at build time');
});

test('a raw client sees the frames the library relies on', { timeout: 20000 }, async () => {
  // The library's contract with the server, checked directly (DESIGN 5).
  const c = await rawClient(srv.url);
  const s = await c.subscribe('raw.a', { snapshot: true });
  assert.match(s.epoch, /^[0-9a-f]{16}$/);
  c.send({ type: 'publish', topic: 'raw.a', data: 1, id: 'r1' });
  const p = await c.next((m) => m.type === 'published');
  assert.deepEqual(p, { type: 'published', topic: 'raw.a', seq: 1, id: 'r1' });
  c.close();
});
