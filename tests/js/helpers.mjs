// Shared by the tests/js/*.test.mjs files: the real server (started per test file on port
// 0), a TCP proxy the tests can sever or stall, JWTs, and small waiting helpers.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.TICKWIRE_BIN ? resolve(process.env.TICKWIRE_BIN) : join(ROOT, 'build', 'tickwire');
export const LIB = join(ROOT, 'src', 'js', 'tickwire.js');
export { WebSocket };

const servers = new Set();
process.on('exit', () => {
  for (const s of servers) s.proc.kill('SIGKILL');
});

/**
 * Starts the tickwire binary with `flags` on 127.0.0.1:0 (unless flags has --listen)
 * and resolves once it printed its port. `.stop()` ends it (SIGKILL if SIGTERM is not
 * enough), `.signal(sig)` sends a signal, `.exited` resolves with its exit code.
 */
export async function startServer(flags = []) {
  if (!existsSync(BIN)) throw new Error(`no server binary at ${BIN} (set TICKWIRE_BIN)`);
  const args = flags.includes('--listen') ? flags : ['--listen', '127.0.0.1:0', ...flags];
  const proc = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const s = { proc, log: '', port: 0 };
  servers.add(s);
  s.exited = new Promise((res) =>
    proc.on('exit', (code, sig) => {
      servers.delete(s);
      res(code ?? sig);
    }),
  );
  await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('server did not start:\n' + s.log)), 5000);
    proc.stderr.on('data', (d) => {
      s.log += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(s.log);
      if (m && !s.port) {
        s.port = Number(m[1]);
        clearTimeout(t);
        res();
      }
    });
    proc.on('exit', (code) => rej(new Error(`server exited ${code}:\n${s.log}`)));
  });
  s.url = `ws://127.0.0.1:${s.port}/ws`;
  s.http = `http://127.0.0.1:${s.port}`;
  s.signal = (sig) => proc.kill(sig);
  s.stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGCONT');
    proc.kill('SIGKILL');
    await s.exited;
  };
  return s;
}

/** POST /publish?topic=T with a JSON body; resolves with the answer's JSON. */
export async function httpPublish(server, topic, data, headers = {}) {
  const r = await fetch(`${server.http}/publish?topic=${encodeURIComponent(topic)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(data),
  });
  const body = await r.json();
  if (r.status !== 200) throw new Error(`publish: ${r.status} ${JSON.stringify(body)}`);
  return body;
}

/**
 * A plain npm-ws connection speaking the wire protocol directly (a monitor subscriber
 * or a publisher that bypasses the library under test). `.messages(topic)` lists the
 * `message` frames received for a topic; `.request(obj, type)` sends and waits for the
 * first answer of that type.
 */
export async function rawClient(url) {
  const ws = new WebSocket(url, ['tickwire.v1']);
  const frames = [];
  const waiters = [];
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    frames.push(m);
    for (const w of [...waiters]) if (w.pred(m)) waiters.splice(waiters.indexOf(w), 1), w.res(m);
  });
  await new Promise((res, rej) => {
    ws.once('open', res);
    ws.once('error', rej);
  });
  const c = {
    ws,
    frames,
    send: (o) => ws.send(JSON.stringify(o)),
    next: (pred, ms = 5000) =>
      new Promise((res, rej) => {
        const found = frames.find(pred);
        if (found) return res(found);
        const w = { pred, res };
        waiters.push(w);
        setTimeout(() => rej(new Error('rawClient: timed out waiting')), ms).unref();
      }),
    messages: (topic) => frames.filter((m) => m.type === 'message' && m.topic === topic),
    async subscribe(topic, extra = {}) {
      c.send({ type: 'subscribe', topic, ...extra });
      return c.next((m) => m.type === 'subscribed' && m.topic === topic);
    },
    close: () => ws.terminate(),
  };
  return c;
}

/**
 * A TCP proxy in front of the server. `sever()` cuts every connection through it (both
 * directions, as a dropped NAT mapping would); `setTarget(null)` refuses new ones (the
 * client's connect then fails at once); `stall()` stops reading from the server (bytes pile
 * up in the server's queue: a slow reader), `drop()` reads and discards what the server
 * sends (an ack that never arrives); `resume()` undoes both.
 */
export async function startProxy(targetPort) {
  let target = targetPort;
  const pairs = new Set();
  let mode = 'pass';
  const srv = net.createServer((client) => {
    client.setNoDelay(true);
    if (!target) return client.destroy();
    const up = net.connect(target, '127.0.0.1');
    up.setNoDelay(true);
    const pair = { client, up };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      up.destroy();
    };
    client.on('data', (d) => up.write(d));
    up.on('data', (d) => {
      if (mode === 'pass') client.write(d);
    });
    if (mode === 'stall') up.pause();
    client.on('close', end);
    up.on('close', end);
    client.on('error', end);
    up.on('error', end);
  });
  await new Promise((res) => srv.listen(0, '127.0.0.1', res));
  const port = srv.address().port;
  return {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    get connections() {
      return pairs.size;
    },
    setTarget(p) {
      target = p;
    },
    sever() {
      for (const { client, up } of [...pairs]) {
        client.destroy();
        up.destroy();
      }
      pairs.clear();
    },
    stall() {
      mode = 'stall';
      for (const { up } of pairs) up.pause();
    },
    drop() {
      mode = 'drop';
    },
    resume() {
      mode = 'pass';
      for (const { up } of pairs) up.resume();
    },
    close: () =>
      new Promise((res) => {
        for (const { client, up } of pairs) client.destroy(), up.destroy();
        srv.close(res);
      }),
  };
}

/** An HS256 JWT. */
export function jwt(secret, claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64(claims);
  return head + '.' + createHmac('sha256', secret).update(head).digest('base64url');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `fn()` is truthy (polled every 5 ms), rejects after `ms`. */
export async function until(fn, ms = 5000, what = 'condition') {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Records a Tickwire's `state` events with their time: `.list` of {state, info, t},
 * `.next(state)` waits for the next one of that state after those already seen.
 */
export function recordStates(tw) {
  const rec = { list: [], seen: 0 };
  tw.on('state', (state, info) => rec.list.push({ state, info, t: Date.now() }));
  rec.next = async (state, ms = 5000) => {
    const from = rec.seen;
    const e = await until(() => rec.list.slice(from).find((x) => x.state === state), ms, `state ${state}`);
    rec.seen = rec.list.indexOf(e) + 1;
    return e;
  };
  return rec;
}

/** A WebSocket class (npm ws) that remembers its instances and every frame sent. */
export function spyWebSocket() {
  const sent = [];
  const sockets = [];
  class Spy extends WebSocket {
    constructor(...a) {
      super(...a);
      sockets.push(this);
    }
    send(d, ...rest) {
      sent.push(JSON.parse(String(d)));
      return super.send(d, ...rest);
    }
  }
  return { WebSocket: Spy, sent, sockets };
}

/** Collects a subscription's events: msgs, gaps, subscribed, errors. */
export function collect(sub) {
  const c = { msgs: [], gaps: [], subscribed: [], errors: [] };
  sub.on('message', (m) => c.msgs.push(m));
  sub.on('gap', (g) => c.gaps.push(g));
  sub.on('subscribed', (s) => c.subscribed.push(s));
  sub.on('error', (e) => c.errors.push(e));
  c.seqs = () => c.msgs.map((m) => m.seq);
  return c;
}
