// The classic-script twin: src/js/tickwire.global.js is tickwire.js made into a plain
// <script> (window.Tickwire). It must be up to date with the module, run as a classic
// script (no module syntax), and work against the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import vm from 'node:vm';
import { makeGlobal } from './make-global.mjs';
import { ROOT, startServer, until, WebSocket } from './helpers.mjs';

const GLOBAL = join(ROOT, 'src', 'js', 'tickwire.global.js');
let srv;
before(async () => {
  srv = await startServer([]);
});
after(async () => {
  await srv.stop();
});

test('tickwire.global.js is generated from tickwire.js (node tests/js/make-global.mjs)', { timeout: 20000 }, () => {
  const want = makeGlobal(readFileSync(join(ROOT, 'src', 'js', 'tickwire.js'), 'utf8'));
  assert.equal(readFileSync(GLOBAL, 'utf8'), want, 'stale: run node tests/js/make-global.mjs');
});

test('as a classic script it defines window.Tickwire, which works against the server', { timeout: 20000 }, async () => {
  const window = {
    WebSocket,
    setTimeout,
    clearTimeout,
    queueMicrotask,
    crypto: globalThis.crypto,
    performance,
    URL,
  };
  window.window = window;
  vm.createContext(window);
  // vm.Script parses a classic script: module syntax would be a SyntaxError here.
  new vm.Script(readFileSync(GLOBAL, 'utf8'), { filename: 'tickwire.global.js' }).runInContext(window);
  const { Tickwire } = window;
  assert.equal(typeof Tickwire, 'function');
  assert.equal(typeof Tickwire.TickwireError, 'function');
  assert.equal(typeof Tickwire.backoffDelay, 'function');
  const tw = new Tickwire(srv.url);
  const got = [];
  const sub = tw.subscribe('global.a', (m) => got.push(m.data));
  await until(() => sub.state === 'live');
  await tw.publish('global.a', { ok: true });
  await until(() => got.length === 1);
  assert.deepEqual(JSON.parse(JSON.stringify(got)), [{ ok: true }]);
  tw.close();
});

test('the server serves the twin at /tickwire.global.js', { timeout: 20000 }, async () => {
  const r = await fetch(`${srv.http}/tickwire.global.js`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/javascript/);
  assert.equal(await r.text(), readFileSync(GLOBAL, 'utf8'), 'rebuild the server: it embeds src/js at build time');
});
