// Tokens and the codes that end everything: token() for every connection, a refresh in
// place on token_expired, a refused refresh ending in 4001 (no reconnect), permissions
// (forbidden) told to the right publish or subscription, 1008 after rate abuse, and
// maxRetries ending in closed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Tickwire } from '../../src/js/tickwire.js';
import { startServer, startProxy, recordStates, collect, jwt, until, sleep, WebSocket } from './helpers.mjs';

const SECRET = 'js-test-secret';
const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

const now = () => Math.floor(Date.now() / 1000);
const claims = (extra) => ({ sub: 'alice', subs: ['*'], pubs: ['*'], exp: now() + 60, ...extra });

test('token() for every connection; token_expired is refreshed in place, the session goes on', { timeout: 20000 }, async (t) => {
  const srv = await startServer(['--jwt-secret', SECRET, '--token-grace', '1s']);
  cleanup.push(() => srv.stop());
  const calls = [];
  // The first token expires (with the server's 5 s leeway) 1-2 s after the connect.
  const firstExp = now() - 3;
  const tw = new Tickwire(srv.url, {
    WebSocket,
    heartbeat: { interval: 200, timeout: 600 },
    backoff: { base: 50, max: 100 },
    token: async () => {
      calls.push(Date.now());
      return jwt(SECRET, claims(calls.length === 1 ? { exp: firstExp } : {}));
    },
  });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const refreshed = [];
  tw.on('refreshed', (r) => refreshed.push(r));
  const errors = [];
  tw.on('error', (e) => errors.push(e));
  const sub = tw.subscribe('tok.a');
  const c = collect(sub);
  await states.next('open');
  await until(() => refreshed.length === 1, 4000, 'refreshed');
  assert.equal(calls.length, 2);
  const late = calls[1] - (firstExp + 5) * 1000;
  t.diagnostic(`token_expired ${late} ms after exp + 5 s leeway`);
  assert.ok(late >= -100 && late <= 600, `token_expired ${late} ms after exp+5s`);
  assert.ok(refreshed[0].exp > now() + 50);
  await sleep(1500); // past --token-grace: a session not refreshed would be closed now
  assert.equal(tw.state, 'open');
  assert.equal(states.list.filter((s) => s.state === 'reconnecting').length, 0);
  assert.deepEqual(await tw.publish('tok.a', 1), { seq: 1, duplicate: false });
  await until(() => c.msgs.length === 1);
  // A new connection asks for a new token.
  tw.drop();
  await states.next('open');
  assert.equal(calls.length, 3);
  assert.deepEqual(errors, []);
  tw.close();
});

test('a refused refresh: bad_token, then 4001 closes for good', { timeout: 20000 }, async () => {
  const srv = await startServer(['--jwt-secret', SECRET, '--token-grace', '500ms']);
  cleanup.push(() => srv.stop());
  let n = 0;
  const tw = new Tickwire(srv.url, {
    WebSocket,
    heartbeat: { interval: 200, timeout: 600 },
    backoff: { base: 20, max: 50 },
    // The refresh comes back for another subject: the server refuses it.
    token: () => jwt(SECRET, ++n === 1 ? claims({ exp: now() - 4 }) : claims({ sub: 'mallory' })),
  });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const errors = [];
  tw.on('error', (e) => errors.push(e));
  await states.next('open');
  const closed = await states.next('closed', 5000);
  assert.equal(closed.info.code, 4001);
  assert.deepEqual(errors.map((e) => e.code), ['bad_token']);
  await sleep(200);
  assert.equal(states.list.filter((s) => s.state === 'reconnecting').length, 0, 'no reconnect after 4001');
  await assert.rejects(tw.publish('x', 1), { code: 'closed' });
});

test('forbidden goes to the publish or subscription it answers; the others succeed', { timeout: 20000 }, async () => {
  const srv = await startServer(['--jwt-secret', SECRET]);
  cleanup.push(() => srv.stop());
  const tw = new Tickwire(srv.url, {
    WebSocket,
    token: () => jwt(SECRET, claims({ subs: ['ok.*'], pubs: ['ok.*'] })),
  });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  await states.next('open');
  const bad = collect(tw.subscribe('no.a'));
  const good = collect(tw.subscribe('ok.a'));
  const results = await Promise.allSettled([
    tw.publish('no.a', 1),
    tw.publish('ok.a', 1),
    tw.publish('no.a', 2),
    tw.publish('ok.a', 2),
  ]);
  assert.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? r.value.seq : r.reason.code)),
    ['forbidden', 1, 'forbidden', 2],
  );
  assert.equal(results[0].reason.topic, 'no.a');
  await until(() => bad.errors.length === 1 && good.msgs.length === 2);
  assert.equal(bad.errors[0].code, 'forbidden');
  assert.deepEqual(good.errors, []);
  assert.deepEqual(good.seqs(), [1, 2]);
  tw.close();
});

test('1008 (rate abuse) is terminal: pending publishes rejected, no reconnect', { timeout: 20000 }, async () => {
  const srv = await startServer(['--max-message-rate', '10/s']);
  cleanup.push(() => srv.stop());
  const tw = new Tickwire(srv.url, { WebSocket, backoff: { base: 20, max: 50 } });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  await states.next('open');
  const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => tw.publish('rate.a', i)));
  const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : r.reason.code));
  const closed = await states.next('closed', 3000);
  assert.equal(closed.info.code, 1008);
  assert.ok(codes.filter((c) => c === 'ok').length >= 5, codes.join());
  assert.ok(codes.includes('rate_limited'), codes.join());
  assert.ok(codes.slice(codes.lastIndexOf('ok') + 1).every((c) => c !== 'ok'));
  await sleep(100);
  assert.equal(states.list.filter((s) => s.state === 'reconnecting').length, 0);
});

test('maxRetries: that many failed attempts, then closed', { timeout: 20000 }, async () => {
  const proxy = await startProxy(null); // refuses every connection
  cleanup.push(() => proxy.close());
  const tw = new Tickwire(proxy.url, { WebSocket, maxRetries: 3, backoff: { base: 20, max: 40 } });
  const states = recordStates(tw);
  const p = tw.publish('r.a', 1);
  const closed = await states.next('closed', 3000);
  assert.deepEqual(
    states.list.map((s) => s.state + (s.info.attempt ? s.info.attempt : '')),
    ['connecting', 'reconnecting1', 'connecting1', 'reconnecting2', 'connecting2', 'reconnecting3', 'connecting3', 'closed3'],
  );
  assert.equal(closed.info.code, 1006);
  await assert.rejects(p, { code: 'closed' });
});
