// Liveness: a stopped server is declared dead within [timeout, timeout + interval] of the
// last frame received, and the client comes back once it runs again; a client whose own
// timers were held up (a throttled tab) pings and waits instead of declaring a live
// connection dead; the browser's `online` event reconnects at once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Tickwire } from '../../src/js/tickwire.js';
import { startServer, startProxy, httpPublish, recordStates, collect, until, sleep, WebSocket } from './helpers.mjs';

const INTERVAL = 200;
const TIMEOUT = 600;
const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

test('SIGSTOP: dead inside [timeout, timeout + interval], back after SIGCONT, resumed', { timeout: 20000 }, async (t) => {
  const srv = await startServer([]);
  cleanup.push(() => srv.stop());
  const tw = new Tickwire(srv.url, {
    WebSocket,
    heartbeat: { interval: INTERVAL, timeout: TIMEOUT },
    backoff: { base: 100, max: 400 },
  });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  let lastRx = 0;
  tw.on('pong', () => (lastRx = Date.now()));
  const sub = tw.subscribe('stop.a');
  const c = collect(sub);
  sub.on('message', () => (lastRx = Date.now()));
  await until(() => sub.state === 'live');
  for (let i = 1; i <= 3; i++) await httpPublish(srv, 'stop.a', i);
  await until(() => c.msgs.length === 3);
  await sleep(300);

  srv.signal('SIGSTOP');
  const dead = await states.next('reconnecting', 3000);
  assert.equal(dead.info.reason, 'heartbeat timeout');
  const silent = dead.t - lastRx;
  t.diagnostic(`declared dead ${silent} ms after the last frame (bound [${TIMEOUT}, ${TIMEOUT + INTERVAL}])`);
  assert.ok(silent >= TIMEOUT - 5 && silent <= TIMEOUT + INTERVAL, `dead after ${silent} ms`);

  // While stopped the kernel still completes TCP handshakes, but no upgrade answer comes:
  // each attempt ends with the connect timeout.
  const attempt = await states.next('reconnecting', 3000);
  assert.equal(attempt.info.reason, 'connect timeout');
  srv.signal('SIGCONT');
  const cont = Date.now();
  const open = await states.next('open', 5000);
  t.diagnostic(`open again ${open.t - cont} ms after SIGCONT`);
  await until(() => c.subscribed.length === 2);
  assert.equal(c.subscribed[1].recovered, true);
  await httpPublish(srv, 'stop.a', 4);
  await until(() => c.msgs.length === 4);
  assert.deepEqual(c.seqs(), [1, 2, 3, 4]);
  assert.deepEqual(c.gaps, []);
  tw.close();
});

test('a blocked event loop (a throttled tab) longer than the timeout does not kill a live connection', { timeout: 20000 }, async (t) => {
  const srv = await startServer([]);
  cleanup.push(() => srv.stop());
  const tw = new Tickwire(srv.url, { WebSocket, heartbeat: { interval: INTERVAL, timeout: TIMEOUT } });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  await states.next('open');
  await sleep(250);
  const pongsBefore = [];
  tw.on('pong', (p) => pongsBefore.push(Date.now()));
  // Block for 3 timeouts: when the loop runs again, the heartbeat timer fires before any
  // socket data is read, and sees 1.8 s of silence.
  const t0 = Date.now();
  while (Date.now() - t0 < 3 * TIMEOUT);
  await sleep(TIMEOUT * 2);
  assert.equal(tw.state, 'open', 'a late timer must ping and wait, not declare the connection dead');
  assert.equal(states.list.filter((s) => s.state === 'reconnecting').length, 0);
  assert.ok(pongsBefore.length >= 3, `pongs after waking: ${pongsBefore.length}`);
  t.diagnostic(`first pong ${pongsBefore[0] - t0 - 3 * TIMEOUT} ms after the loop ran again`);
  tw.close();
});

test('a late timer still declares a dead connection dead (after one grace)', { timeout: 20000 }, async (t) => {
  const srv = await startServer([]);
  cleanup.push(() => srv.stop());
  const tw = new Tickwire(srv.url, { WebSocket, heartbeat: { interval: INTERVAL, timeout: TIMEOUT } });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  await states.next('open');
  srv.signal('SIGSTOP');
  const t0 = Date.now();
  while (Date.now() - t0 < 3 * TIMEOUT);
  const woke = Date.now();
  const dead = await states.next('reconnecting', 3000);
  srv.signal('SIGCONT');
  assert.equal(dead.info.reason, 'heartbeat timeout');
  // The grace after a late timer is timeout - interval.
  const after = dead.t - woke;
  t.diagnostic(`dead ${after} ms after waking (grace ${TIMEOUT - INTERVAL} ms)`);
  assert.ok(after >= TIMEOUT - INTERVAL - 5 && after <= TIMEOUT + INTERVAL, `dead ${after} ms after waking`);
  tw.close();
});

test('an online event reconnects at once instead of waiting the delay', { timeout: 20000 }, async () => {
  const srv = await startServer([]);
  cleanup.push(() => srv.stop());
  const target = new EventTarget();
  globalThis.addEventListener = target.addEventListener.bind(target);
  globalThis.removeEventListener = target.removeEventListener.bind(target);
  try {
    const proxy = await startProxy(null); // refuses until it has a target
    cleanup.push(() => proxy.close());
    const tw = new Tickwire(proxy.url, {
      WebSocket,
      backoff: { base: 60000, max: 60000 },
      random: () => 0.5, // a 30 s delay
    });
    const states = recordStates(tw);
    const rec = await states.next('reconnecting');
    assert.equal(rec.info.delay, 30000);
    proxy.setTarget(srv.port); // the network is back
    const t0 = Date.now();
    target.dispatchEvent(new Event('online'));
    const conn = await states.next('connecting', 1000);
    assert.ok(conn.t - t0 < 50, `online reconnected after ${conn.t - t0} ms`);
    await states.next('open');
    tw.close();
  } finally {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
  }
});
