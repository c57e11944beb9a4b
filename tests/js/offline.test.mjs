// The offline queue: publishes made while disconnected are sent, in order, after the
// resubscribes of the next connection and applied exactly once, also one whose ack was
// lost; the queue's bound rejects the oldest; timeouts; close() rejects what is pending.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Tickwire } from '../../src/js/tickwire.js';
import { startServer, startProxy, rawClient, recordStates, collect, spyWebSocket, until, sleep } from './helpers.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

async function setup(extra = {}) {
  const srv = await startServer([]);
  cleanup.push(() => srv.stop());
  const proxy = await startProxy(srv.port);
  cleanup.push(() => proxy.close());
  const spy = spyWebSocket();
  const tw = new Tickwire(proxy.url, {
    WebSocket: spy.WebSocket,
    heartbeat: { interval: 200, timeout: 600 },
    backoff: { base: 50, max: 200 },
    ...extra,
  });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const monitor = await rawClient(srv.url); // sees what the server really published
  cleanup.push(() => monitor.close());
  return { srv, proxy, spy, tw, states, monitor };
}

test('publishes made offline are sent after the resubscribes and applied once, in order', { timeout: 20000 }, async () => {
  const { srv, proxy, spy, tw, states, monitor } = await setup();
  await monitor.subscribe('off.a');
  const sub = tw.subscribe('off.a');
  const c = collect(sub);
  await until(() => sub.state === 'live');
  await tw.publish('off.a', 0);

  proxy.setTarget(null);
  proxy.sever();
  await states.next('reconnecting');
  const results = [1, 2, 3, 4, 5].map((i) => tw.publish('off.a', i));
  assert.equal(spy.sent.filter((f) => f.type === 'publish').length, 1, 'nothing sent while offline');
  await sleep(300); // a few failed attempts
  proxy.setTarget(srv.port);
  await states.next('open', 3000);
  const acks = await Promise.all(results);
  assert.deepEqual(acks, [2, 3, 4, 5, 6].map((seq) => ({ seq, duplicate: false })));
  // On the new connection: the resubscribe first, then the five publishes in order.
  const last = spy.sockets.length;
  assert.ok(last >= 2);
  const frames = spy.sent.slice(spy.sent.findLastIndex((f) => f.type === 'subscribe'));
  assert.equal(frames[0].type, 'subscribe');
  assert.equal(frames[0].since, 1);
  assert.deepEqual(frames.filter((f) => f.type === 'publish').map((f) => f.data), [1, 2, 3, 4, 5]);
  await until(() => monitor.messages('off.a').length === 6 && c.msgs.length === 6);
  await sleep(100);
  assert.deepEqual(monitor.messages('off.a').map((m) => m.data), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(c.msgs.map((m) => m.data), [0, 1, 2, 3, 4, 5]);
  tw.close();
});

test('an ack lost with the connection: re-sent with the same id, answered duplicate, applied once', { timeout: 20000 }, async () => {
  const { srv, proxy, spy, tw, states, monitor } = await setup();
  await monitor.subscribe('ack.a');
  await states.next('open');
  proxy.drop(); // from now on the server's answers vanish
  const p = tw.publish('ack.a', { order: 7 });
  let settled = false;
  p.then(() => (settled = true));
  const applied = await monitor.next((m) => m.type === 'message' && m.topic === 'ack.a');
  assert.equal(applied.seq, 1);
  await sleep(50);
  assert.equal(settled, false, 'the ack was dropped');
  proxy.sever();
  proxy.resume();
  await states.next('reconnecting');
  assert.deepEqual(await p, { seq: 1, duplicate: true });
  const sent = spy.sent.filter((f) => f.type === 'publish');
  assert.equal(sent.length, 2);
  assert.equal(sent[0].id, sent[1].id);
  await sleep(150);
  assert.equal(monitor.messages('ack.a').length, 1, 'applied once');
  tw.close();
});

test('queue.max bounds the offline queue: the oldest are rejected with queue_overflow', { timeout: 20000 }, async () => {
  const { srv, proxy, tw, states, monitor } = await setup({ queue: { max: 3 } });
  await monitor.subscribe('q.a');
  await states.next('open');
  proxy.setTarget(null);
  proxy.sever();
  await states.next('reconnecting');
  const settled = [];
  const ps = [1, 2, 3, 4, 5].map((i) =>
    tw.publish('q.a', i).then(
      (v) => settled.push([i, 'ok', v.seq]),
      (e) => settled.push([i, e.code]),
    ),
  );
  await sleep(10);
  assert.deepEqual(settled, [
    [1, 'queue_overflow'],
    [2, 'queue_overflow'],
  ]);
  proxy.setTarget(srv.port);
  await Promise.all(ps);
  assert.deepEqual(settled.slice(2), [
    [3, 'ok', 1],
    [4, 'ok', 2],
    [5, 'ok', 3],
  ]);
  await until(() => monitor.messages('q.a').length === 3);
  assert.deepEqual(monitor.messages('q.a').map((m) => m.data), [3, 4, 5]);
  tw.close();
});

test('publish timeout rejects with timeout; close() rejects the rest with closed', { timeout: 20000 }, async () => {
  const { proxy, tw, states } = await setup();
  await states.next('open');
  proxy.setTarget(null);
  proxy.sever();
  await states.next('reconnecting');
  const t0 = Date.now();
  const timed = tw.publish('t.a', 1, { timeout: 150 });
  const pending = tw.publish('t.a', 2);
  await assert.rejects(timed, (e) => e.code === 'timeout' && /queued/.test(e.message));
  const took = Date.now() - t0;
  assert.ok(took >= 145 && took < 300, `timeout after ${took} ms`);
  tw.close();
  await assert.rejects(pending, { code: 'closed' });
  assert.equal(tw.state, 'closed');
});

test('a publish over --max-message is rejected with too_big, not re-sent forever', { timeout: 20000 }, async () => {
  const srv = await startServer(['--max-message', '1KiB']);
  cleanup.push(() => srv.stop());
  const tw = new Tickwire(srv.url, { WebSocket: spyWebSocket().WebSocket, backoff: { base: 20, max: 50 } });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  await states.next('open');
  const small1 = tw.publish('big.a', 'a');
  const big = tw.publish('big.a', 'x'.repeat(2000));
  const small2 = tw.publish('big.a', 'b');
  await assert.rejects(big, (e) => e.code === 'too_big' && e.topic === 'big.a');
  const rec = states.list.find((s) => s.state === 'reconnecting');
  assert.equal(rec.info.code, 1009);
  // The one before it was answered before the Close; the one after is sent again.
  assert.deepEqual(await small1, { seq: 1, duplicate: false });
  assert.deepEqual(await small2, { seq: 2, duplicate: false });
  await sleep(100);
  assert.equal(states.list.filter((s) => s.state === 'reconnecting').length, 1);
  tw.close();
});
