// What the single-node server never sends but the library must handle (resync from the
// coming cluster mode, close codes 4000-4099 other than 4001, frames that are not JSON),
// played by a scripted npm-ws server; and several URLs tried in turn (real servers).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from 'ws';
import { Tickwire } from '../../src/js/tickwire.js';
import { startServer, startProxy, recordStates, collect, until, sleep, WebSocket } from './helpers.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

/** A scripted server: `onConn(ws, frames)` per connection; frames are parsed client frames. */
async function fakeServer(onConn) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.on('listening', r));
  const conns = [];
  wss.on('connection', (ws) => {
    const c = { ws, frames: [], send: (o) => ws.send(typeof o === 'string' ? o : JSON.stringify(o)) };
    conns.push(c);
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      c.frames.push(m);
      if (m.type === 'ping') c.send({ type: 'pong', time: m.time });
      c.onFrame?.(m);
    });
    onConn(c, conns.length);
  });
  cleanup.push(() => new Promise((r) => wss.close(r)));
  return { url: `ws://127.0.0.1:${wss.address().port}/ws`, conns };
}

test('resync: gap to an unknown end, resubscribe with snapshot, continue in the new epoch', { timeout: 20000 }, async () => {
  const fake = await fakeServer((c) => {
    c.onFrame = (m) => {
      if (m.type !== 'subscribe') return;
      if (!m.snapshot || m.since !== undefined) {
        c.send({ type: 'subscribed', topic: m.topic, seq: 5, epoch: 'e1' });
        c.send({ type: 'message', topic: m.topic, seq: 6, data: 'a' });
        c.send({ type: 'message', topic: m.topic, seq: 6, data: 'dup' }); // dropped
        c.send({ type: 'message', topic: m.topic, seq: 7, data: 'b' });
        c.send({ type: 'resync', topic: m.topic, epoch: 'e2' });
        c.send({ type: 'message', topic: m.topic, seq: 8, data: 'stale' }); // in flight
      } else {
        c.send({ type: 'message', topic: m.topic, seq: 3, data: 'snap' });
        c.send({ type: 'subscribed', topic: m.topic, seq: 3, epoch: 'e2' });
        c.send({ type: 'message', topic: m.topic, seq: 4, data: 'c' });
      }
    };
  });
  const tw = new Tickwire(fake.url, { WebSocket });
  cleanup.push(() => tw.close());
  const sub = tw.subscribe('rs.a');
  const c = collect(sub);
  await until(() => c.msgs.length === 4, 3000, '4 messages');
  await sleep(50);
  assert.deepEqual(c.msgs.map((m) => [m.epoch, m.seq, m.data]), [
    ['e1', 6, 'a'],
    ['e1', 7, 'b'],
    ['e2', 3, 'snap'],
    ['e2', 4, 'c'],
  ]);
  assert.deepEqual(c.gaps, [{ from: 8, to: null, epoch: 'e1', reason: 'resync' }]);
  const subs = fake.conns[0].frames.filter((f) => f.type === 'subscribe');
  assert.deepEqual(subs[1], { type: 'subscribe', topic: 'rs.a', snapshot: true });
  tw.close();
});

test('close codes: 4000-4099 end for good, 4100 and 1001 without a hint back off', { timeout: 20000 }, async () => {
  const codes = [4100, 1001, 4040];
  const fake = await fakeServer((c, n) => setTimeout(() => c.ws.close(codes[n - 1], n === 2 ? 'not json' : ''), 20));
  const tw = new Tickwire(fake.url, { WebSocket, backoff: { base: 30, max: 60 } });
  const states = recordStates(tw);
  const closed = await states.next('closed', 3000);
  assert.equal(closed.info.code, 4040);
  const recs = states.list.filter((s) => s.state === 'reconnecting');
  assert.deepEqual(recs.map((r) => r.info.code), [4100, 1001]);
  assert.ok(recs[0].info.delay < 30 && recs[1].info.delay < 60, 'backoff windows');
  await sleep(100);
  assert.equal(fake.conns.length, 3);
});

test('a frame that is not JSON is reported, the connection goes on', { timeout: 20000 }, async () => {
  const fake = await fakeServer((c) => {
    c.send('not json');
    c.send({ type: 'future_thing', x: 1 }); // unknown types are ignored
  });
  const tw = new Tickwire(fake.url, { WebSocket });
  const errors = [];
  tw.on('error', (e) => errors.push(e));
  await until(() => errors.length === 1);
  assert.equal(errors[0].code, 'bad_message');
  assert.equal(tw.state, 'open');
  tw.close();
});

test('several URLs are tried in turn', { timeout: 20000 }, async () => {
  const srv = await startServer([]);
  cleanup.push(() => srv.stop());
  const dead = await startProxy(null);
  cleanup.push(() => dead.close());
  const tw = new Tickwire([dead.url, srv.url], { WebSocket, backoff: { base: 20, max: 40 } });
  const states = recordStates(tw);
  const open = await states.next('open');
  assert.equal(open.info.url, srv.url);
  assert.deepEqual(
    states.list.filter((s) => s.state === 'connecting').map((s) => s.info.url),
    [dead.url, srv.url],
  );
  tw.close();
});

test('relative and http URLs are resolved against the page', { timeout: 20000 }, async () => {
  globalThis.location = { href: 'https://example.test/app/page.html' };
  try {
    const urls = [];
    class Fake {
      constructor(u) {
        urls.push(u);
        throw new Error('no network here');
      }
    }
    for (const u of ['/ws', 'http://h:1/ws', 'wss://h/ws?a=1'])
      new Tickwire(u, { WebSocket: Fake, token: 't k', maxRetries: 0 }).on('error', () => {});
    await sleep(10);
    assert.deepEqual(urls, ['wss://example.test/ws?token=t%20k', 'ws://h:1/ws?token=t%20k', 'wss://h/ws?a=1&token=t%20k']);
  } finally {
    delete globalThis.location;
  }
});
