// Failover across several URLs (issue 12): a client given a URL list moves to the next one
// on every reconnect (round robin, failed attempts included) and resumes every topic with
// since + epoch. Two real standalone servers (kill -9 the first): different epochs, so the
// client is told the truth (recovered:false, a gap, the new node's snapshot). A cluster
// (nodes sharing one Redis, one epoch per topic) is played by two scripted npm-ws nodes
// sharing one history: the resume is exact, nothing lost, nothing duplicated. The same
// with two real nodes on one Redis runs once the binary has --broker (skipped before).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from 'ws';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { Tickwire } from '../../src/js/tickwire.js';
import {
  startServer,
  startProxy,
  httpPublish,
  recordStates,
  collect,
  until,
  sleep,
  spyWebSocket,
  WebSocket,
  BIN,
} from './helpers.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

const FAST = { heartbeat: { interval: 200, timeout: 600 }, backoff: { base: 50, max: 200 } };

test('kill -9 the first of two standalone servers: the client moves to the second, told the truth', { timeout: 20000 }, async () => {
  const a = await startServer([]);
  const b = await startServer([]);
  cleanup.push(() => a.stop(), () => b.stop());
  const spy = spyWebSocket();
  const tw = new Tickwire([a.url, b.url], { WebSocket: spy.WebSocket, ...FAST });
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const subA = tw.subscribe('fo.a', { snapshot: true });
  const subB = tw.subscribe('fo.b');
  const ca = collect(subA);
  const cb = collect(subB);

  assert.equal((await states.next('open')).info.url, a.url);
  assert.equal(tw.url, a.url);
  await until(() => subA.state === 'live' && subB.state === 'live', 3000, 'live on a');
  for (let i = 1; i <= 3; i++) await httpPublish(a, 'fo.a', { n: 'a' + i });
  await httpPublish(a, 'fo.b', { n: 'a1' });
  await until(() => ca.msgs.length === 3 && cb.msgs.length === 1, 3000, 'messages on a');
  const epochA = subA.epoch;
  const epochB = subB.epoch;

  // The second node has its own history (and a last value) for fo.a.
  await httpPublish(b, 'fo.a', { n: 'b1' });
  await httpPublish(b, 'fo.a', { n: 'b2' });

  const sentBefore = spy.sent.length;
  a.signal('SIGKILL');
  assert.equal(await a.exited, 'SIGKILL');
  const rec = await states.next('reconnecting', 3000);
  assert.equal(rec.info.code, 1006);
  assert.equal(rec.info.url, b.url, 'the next attempt goes to the next URL');
  assert.equal((await states.next('open', 3000)).info.url, b.url);
  assert.equal(tw.url, b.url);

  // Each topic was resumed with since + epoch of the node that died.
  const resumes = spy.sent.slice(sentBefore).filter((f) => f.type === 'subscribe');
  assert.deepEqual(
    resumes.map((f) => [f.topic, f.since, f.epoch]).sort(),
    [
      ['fo.a', 3, epochA],
      ['fo.b', 1, epochB],
    ].sort(),
  );
  // A standalone node has other epochs: recovered:false, one gap to an unknown end, then
  // the new node's snapshot (its last value), never a silent jump.
  await until(() => ca.subscribed.length === 2 && cb.subscribed.length === 2, 3000, 'resubscribed on b');
  assert.equal(ca.subscribed[1].recovered, false);
  assert.equal(cb.subscribed[1].recovered, false);
  assert.notEqual(subA.epoch, epochA);
  assert.deepEqual(ca.gaps, [{ from: 4, to: null, epoch: epochA, reason: 'epoch' }]);
  assert.equal(cb.gaps.length, 1);
  assert.equal(cb.gaps[0].reason, 'epoch');
  assert.deepEqual(ca.msgs.map((m) => m.data.n), ['a1', 'a2', 'a3', 'b2']);
  assert.equal(ca.msgs[3].epoch, subA.epoch);

  // Live on the second node.
  await httpPublish(b, 'fo.a', { n: 'b3' });
  await httpPublish(b, 'fo.b', { n: 'b1' });
  await until(() => ca.msgs.length === 5 && cb.msgs.length === 2, 3000, 'messages on b');
  assert.deepEqual(ca.msgs.slice(3).map((m) => m.seq), [2, 3]);
  assert.deepEqual(cb.msgs.map((m) => m.data.n), ['a1', 'b1']);
  tw.close();
});

test('round robin: a failed attempt moves on too, and the list wraps around', { timeout: 20000 }, async () => {
  const a = await startServer([]);
  const b = await startServer([]);
  cleanup.push(() => a.stop(), () => b.stop());
  const dead = await startProxy(null); // refuses every connection
  cleanup.push(() => dead.close());
  const pa = await startProxy(a.port);
  cleanup.push(() => pa.close());
  const tw = new Tickwire([pa.url, dead.url, b.url], FAST_WS());
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const sub = tw.subscribe('rr.a');
  const c = collect(sub);
  await states.next('open');
  await until(() => sub.state === 'live');

  pa.sever();
  await until(() => tw.state === 'open' && tw.url === b.url, 5000, 'open on b');
  await until(() => sub.state === 'live');
  await httpPublish(b, 'rr.a', { n: 1 });
  await until(() => c.msgs.length === 1);

  b.signal('SIGKILL');
  await until(() => tw.state === 'open' && tw.url === pa.url, 5000, 'open on a again');
  const urls = states.list.filter((s) => s.state === 'connecting').map((s) => s.info.url);
  assert.deepEqual(urls.slice(0, 4), [pa.url, dead.url, b.url, pa.url]);
  assert.equal(states.list.filter((s) => s.state === 'open').length, 3);
  // Every reconnecting state names the URL it will try next, and the backoff is the usual.
  for (const r of states.list.filter((s) => s.state === 'reconnecting')) {
    assert.ok(r.info.url, 'reconnecting names the next URL');
    assert.ok(r.info.delay >= 0 && r.info.delay < FAST.backoff.max, `delay ${r.info.delay}`);
  }
  await until(() => sub.state === 'live');
  await httpPublish(a, 'rr.a', { n: 'a' });
  await until(() => c.msgs.length === 2);
  tw.close();
});

function FAST_WS() {
  return { WebSocket, ...FAST };
}

/**
 * Two scripted nodes of one cluster: one topic store (one epoch per topic, a history, as
 * Redis holds them) shared by both, each node answering subscribe (since + epoch: replay,
 * recovered:true; another epoch or a history that no longer reaches: recovered:false and
 * the last value) and fanning out publishes to its own subscribers. `kill(i)` ends node i
 * as kill -9 would: its sockets die, its port refuses.
 */
async function fakeCluster(n, historyMax = 100) {
  const topics = new Map(); // topic -> {epoch, seq, hist: [{seq, data}]}
  const topic = (t) => {
    if (!topics.has(t)) topics.set(t, { epoch: 'E-' + t, seq: 0, hist: [] });
    return topics.get(t);
  };
  const nodes = [];
  for (let i = 0; i < n; i++) {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.on('listening', r));
    const node = { wss, url: `ws://127.0.0.1:${wss.address().port}/ws`, conns: new Set(), alive: true };
    wss.on('connection', (ws) => {
      const c = { ws, subs: new Set(), frames: [] };
      node.conns.add(c);
      ws.on('close', () => node.conns.delete(c));
      const send = (o) => ws.send(JSON.stringify(o));
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString());
        c.frames.push(m);
        if (m.type === 'ping') return send({ type: 'pong', time: m.time });
        if (m.type !== 'subscribe') return;
        const t = topic(m.topic);
        if (m.since !== undefined && cluster.resyncOnResume) {
          // The node finds the position invalid while it backfills, before `subscribed`.
          cluster.resyncOnResume = false;
          t.epoch += "'";
          t.seq = 0;
          t.hist = [];
          c.subs.add(m.topic);
          send({ type: 'resync', topic: m.topic, epoch: t.epoch });
        }
        const msg = (h) => ({ type: 'message', topic: m.topic, seq: h.seq, data: h.data });
        let recovered;
        if (m.since !== undefined) {
          const oldest = t.hist.length ? t.hist[0].seq : t.seq + 1;
          recovered = m.epoch === t.epoch && m.since + 1 >= oldest && m.since <= t.seq;
          if (recovered) for (const h of t.hist) if (h.seq > m.since) send(msg(h));
        }
        if (!recovered && m.snapshot && t.hist.length) send(msg(t.hist[t.hist.length - 1]));
        c.subs.add(m.topic);
        const ans = { type: 'subscribed', topic: m.topic, seq: t.seq, epoch: t.epoch };
        if (m.since !== undefined) ans.recovered = recovered;
        send(ans);
      });
    });
    nodes.push(node);
  }
  cleanup.push(async () => {
    for (const node of nodes) if (node.alive) await new Promise((r) => node.wss.close(r));
  });
  const cluster = {
    resyncOnResume: false,
    nodes,
    urls: nodes.map((x) => x.url),
    publish(t, data) {
      const s = topic(t);
      const h = { seq: ++s.seq, data };
      s.hist.push(h);
      if (s.hist.length > historyMax) s.hist.shift();
      for (const node of nodes)
        if (node.alive)
          for (const c of node.conns)
            if (c.subs.has(t)) c.ws.send(JSON.stringify({ type: 'message', topic: t, seq: h.seq, data }));
      return h.seq;
    },
    resync(t) {
      // A broker that lost the topic: a new epoch, and every subscriber is told.
      const s = topics.get(t);
      s.epoch += "'";
      s.seq = 0;
      s.hist = [];
      for (const node of nodes)
        if (node.alive)
          for (const c of node.conns) if (c.subs.has(t)) c.ws.send(JSON.stringify({ type: 'resync', topic: t, epoch: s.epoch }));
    },
    async kill(i) {
      const node = nodes[i];
      node.alive = false;
      for (const c of node.conns) c.ws.terminate();
      await new Promise((r) => node.wss.close(r));
    },
  };
  return cluster;
}

test('cluster (one epoch per topic): the node dies, the client resumes on another with nothing lost or duplicated', { timeout: 20000 }, async () => {
  const cl = await fakeCluster(2);
  const tw = new Tickwire(cl.urls, FAST_WS());
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const subs = ['cl.a', 'cl.b'].map((t) => tw.subscribe(t, { snapshot: true }));
  const cs = subs.map(collect);
  assert.equal((await states.next('open')).info.url, cl.urls[0]);
  await until(() => subs.every((s) => s.state === 'live'), 3000, 'live');
  for (let i = 1; i <= 5; i++) cl.publish('cl.a', i), cl.publish('cl.b', -i);
  await until(() => cs[0].msgs.length === 5 && cs[1].msgs.length === 5, 3000, 'first 5');

  // Published while the client is between nodes (in the reconnecting listener, before
  // any next attempt can start): replayed by the next node.
  const off = tw.on('state', (s) => {
    if (s !== 'reconnecting') return;
    off();
    for (let i = 6; i <= 8; i++) cl.publish('cl.a', i), cl.publish('cl.b', -i);
  });
  await cl.kill(0);
  await states.next('reconnecting', 3000);
  const open = await states.next('open', 3000);
  assert.equal(open.info.url, cl.urls[1]);
  assert.equal(tw.url, cl.urls[1]);
  await until(() => cs.every((c) => c.subscribed.length === 2), 3000, 'resumed');
  const resumes = cl.nodes[1].conns.values().next().value.frames.filter((f) => f.type === 'subscribe');
  assert.deepEqual(
    resumes.map((f) => [f.topic, f.since, f.epoch]),
    [
      ['cl.a', 5, 'E-cl.a'],
      ['cl.b', 5, 'E-cl.b'],
    ],
  );
  for (let i = 9; i <= 10; i++) cl.publish('cl.a', i), cl.publish('cl.b', -i);
  await until(() => cs[0].msgs.length === 10 && cs[1].msgs.length === 10, 3000, 'all 10');
  await sleep(50);
  const range = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  assert.deepEqual(cs[0].seqs(), range);
  assert.deepEqual(cs[0].msgs.map((m) => m.data), range);
  assert.deepEqual(cs[1].msgs.map((m) => m.data), range.map((x) => -x));
  for (const c of cs) {
    assert.equal(c.subscribed[1].recovered, true);
    assert.deepEqual(c.gaps, []);
    assert.ok(c.msgs.every((m) => m.epoch === c.msgs[0].epoch));
  }

  // A resync on the new node is handled as before: gap to an unknown end, snapshot.
  cl.resync('cl.a');
  cl.publish('cl.a', 11);
  await until(() => cs[0].subscribed.length === 3, 3000, 'resubscribed after resync');
  const last = cl.nodes[1].conns.values().next().value.frames.filter((f) => f.type === 'subscribe').at(-1);
  assert.deepEqual(last, { type: 'subscribe', topic: 'cl.a', snapshot: true });
  assert.deepEqual(cs[0].gaps, [{ from: 11, to: null, epoch: 'E-cl.a', reason: 'resync' }]);
  await until(() => cs[0].msgs.length === 11, 3000, 'snapshot after resync');
  assert.deepEqual([cs[0].msgs[10].epoch, cs[0].msgs[10].seq, cs[0].msgs[10].data], ["E-cl.a'", 1, 11]);
  tw.close();
});

test('cluster: history that no longer reaches the position is recovered:false and a gap, not silence', { timeout: 20000 }, async () => {
  const cl = await fakeCluster(2, 3);
  const tw = new Tickwire(cl.urls, FAST_WS());
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const sub = tw.subscribe('cl.h');
  const c = collect(sub);
  await states.next('open');
  await until(() => sub.state === 'live');
  cl.publish('cl.h', 1);
  await until(() => c.msgs.length === 1);
  const off = tw.on('state', (s) => {
    if (s !== 'reconnecting') return;
    off();
    for (let i = 2; i <= 9; i++) cl.publish('cl.h', i); // history keeps 7..9
  });
  await cl.kill(0);
  await states.next('reconnecting', 3000);
  assert.equal((await states.next('open', 3000)).info.url, cl.urls[1]);
  await until(() => c.subscribed.length === 2, 3000, 'resubscribed');
  assert.equal(c.subscribed[1].recovered, false);
  await until(() => c.gaps.length >= 1, 3000, 'gap');
  assert.equal(c.gaps[0].from, 2);
  assert.equal(c.gaps[0].reason, 'history');
  cl.publish('cl.h', 10);
  await until(() => c.msgs.at(-1).seq === 10, 3000, 'live after the gap');
  const seqs = c.seqs();
  assert.deepEqual(seqs, [...new Set(seqs)].sort((x, y) => x - y), 'no duplicates, in order');
  tw.close();
});

test('cluster: a resync while the resume is still unanswered is one gap, then the snapshot', { timeout: 20000 }, async () => {
  const cl = await fakeCluster(2);
  const tw = new Tickwire(cl.urls, FAST_WS());
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const sub = tw.subscribe('cl.r');
  const c = collect(sub);
  await states.next('open');
  await until(() => sub.state === 'live');
  cl.publish('cl.r', 1);
  cl.publish('cl.r', 2);
  await until(() => c.msgs.length === 2);
  cl.resyncOnResume = true;
  await cl.kill(0);
  assert.equal((await states.next('open', 3000)).info.url, cl.urls[1]);
  await until(() => c.subscribed.length === 2 && sub.state === 'live', 3000, 'resubscribed');
  const frames = cl.nodes[1].conns.values().next().value.frames.filter((f) => f.type === 'subscribe');
  assert.deepEqual(frames.at(-1), { type: 'subscribe', topic: 'cl.r', snapshot: true });
  assert.deepEqual(c.gaps, [{ from: 3, to: null, epoch: 'E-cl.r', reason: 'resync' }]);
  cl.publish('cl.r', 3);
  await until(() => c.msgs.length === 3, 3000, 'live in the new epoch');
  assert.deepEqual([c.msgs[2].epoch, c.msgs[2].seq], ["E-cl.r'", 1]);
  tw.close();
});

// The real thing: two tickwire nodes with --broker on one Redis. Skipped until the binary
// has --broker (the server side of issue 12) and redis-server is installed.
const help = spawnSync(BIN, ['--help'], { encoding: 'utf8' });
const hasBroker = /--broker/.test((help.stdout || '') + (help.stderr || ''));
const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
const clusterSkip = !hasBroker ? 'the server has no --broker yet' : !hasRedis ? 'no redis-server' : false;

async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

test('real cluster (two nodes, one Redis): kill -9 a node, resume on the other, nothing lost or duplicated', { timeout: 30000, skip: clusterSkip }, async () => {
  const rport = await freePort();
  const redis = spawn('redis-server', ['--port', String(rport), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  cleanup.push(() => redis.kill('SIGKILL'));
  const t0 = Date.now();
  for (;;) {
    const up = await new Promise((res) => {
      const sock = net.connect(rport, '127.0.0.1');
      sock.once('connect', () => (sock.destroy(), res(true)));
      sock.once('error', () => res(false));
    });
    if (up) break;
    if (redis.exitCode !== null || Date.now() - t0 > 5000) throw new Error('redis-server did not start');
    await sleep(20);
  }
  const broker = ['--broker', `redis://127.0.0.1:${rport}`];
  const a = await startServer(broker);
  const b = await startServer(broker);
  cleanup.push(() => a.stop(), () => b.stop());
  const tw = new Tickwire([a.url, b.url], FAST_WS());
  cleanup.push(() => tw.close());
  const states = recordStates(tw);
  const sub = tw.subscribe('rc.a', { snapshot: true });
  const c = collect(sub);
  assert.equal((await states.next('open', 5000)).info.url, a.url);
  await until(() => sub.state === 'live', 5000, 'live on a');
  for (let i = 1; i <= 5; i++) await httpPublish(a, 'rc.a', { i });
  await until(() => c.msgs.length === 5, 5000, 'first 5');
  const epoch = sub.epoch;
  a.signal('SIGKILL');
  await a.exited;
  for (let i = 6; i <= 8; i++) await httpPublish(b, 'rc.a', { i }); // while between nodes (or just after)
  await until(() => tw.state === 'open' && tw.url === b.url, 5000, 'open on b');
  await until(() => c.subscribed.length === 2, 5000, 'resumed on b');
  assert.equal(c.subscribed[1].recovered, true);
  assert.equal(sub.epoch, epoch);
  for (let i = 9; i <= 10; i++) await httpPublish(b, 'rc.a', { i });
  await until(() => c.msgs.length === 10, 5000, 'all 10');
  await sleep(100);
  assert.deepEqual(c.seqs(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(c.msgs.map((m) => m.data.i), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(c.gaps, []);
  tw.close();
});
