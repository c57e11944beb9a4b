/**
 * tickwire.js — the client library of the tickwire push server (DESIGN 9).
 *
 * One dependency-free file for browsers and Node >= 20. It keeps one WebSocket to the
 * server alive and hides its losses from the page:
 *
 *  - liveness: an app-level ping every `heartbeat.interval`; a connection that has
 *    received nothing for `heartbeat.timeout` is dead. Deadlines are checked against the
 *    wall clock, and a timer that fired late (a throttled background tab, a laptop that
 *    slept) pings and waits before it declares anything dead;
 *  - reconnect: full-jitter exponential backoff, the server's `{"retry_ms":R}` hint on
 *    Close 1001, an immediate retry on the browser's `online` event, several URLs in turn;
 *  - resume: every topic remembers (epoch, seq) of the last message it delivered and
 *    resubscribes with `since` + `epoch`; what cannot be recovered is reported as a `gap`,
 *    and no message is ever delivered twice or out of order;
 *  - an offline queue of publishes, each with an idempotency id, so a publish whose ack
 *    was lost is re-sent and the server applies it once;
 *  - tokens: `token()` for every connection, and an in-place `refresh` when the server
 *    says `token_expired`.
 *
 * Nothing here throws asynchronously into the page: listener exceptions and unexpected
 * server answers are reported through the `error` event. Only calls with bad arguments
 * (a malformed topic, bad options) throw, synchronously.
 *
 * Loading: `import { Tickwire } from "/tickwire.js"` (an ES module), or the classic-script
 * twin `<script src="/tickwire.global.js">` that defines `window.Tickwire`. The twin is
 * generated from this file by `node tests/js/make-global.mjs` (it strips the one `export`
 * statement at the end and wraps the rest in a function); a test fails when they differ.
 * So this file must keep exactly one `export { ... }`, as its last statement.
 */

const TOPIC_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
const OPEN = 1; // WebSocket.OPEN, the same in every implementation

const DEFAULTS = {
  heartbeat: { interval: 15000, timeout: 45000 },
  backoff: { base: 1000, max: 30000, resetAfter: 10000 },
  maxRetries: Infinity,
  queue: { max: 1000 },
  publishTimeout: Infinity,
  protocols: ["tickwire.v1"],
};

/** Close codes after which reconnecting cannot help (DESIGN 9). */
function isTerminal(code) {
  return code === 1008 || (code >= 4000 && code <= 4099);
}

/** The delay in ms before reconnect attempt `attempt` (1, 2, ...): full jitter. */
function backoffDelay(attempt, base, max, random = Math.random) {
  const cap = Math.min(max, base * Math.pow(2, Math.max(0, attempt - 1)));
  return Math.floor(random() * cap);
}

/** A random publish id: 32 hex digits (within the server's [A-Za-z0-9._:-]{1,64}). */
function randomId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID().replace(/-/g, "");
  let s = "";
  if (c && typeof c.getRandomValues === "function") {
    for (const b of c.getRandomValues(new Uint8Array(16))) s += b.toString(16).padStart(2, "0");
    return s;
  }
  for (let i = 0; i < 4; i++) s += Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, "0");
  return s;
}

/** performance.now() where there is one: for round trips, not for deadlines. */
function monotonic() {
  const p = globalThis.performance;
  return p && typeof p.now === "function" ? p.now() : Date.now();
}

/** A relative ("/ws") or http(s) URL made into a ws(s) one, resolved against the page. */
function resolveUrl(url) {
  const loc = globalThis.location;
  let u = String(url);
  if (!/^[a-z][a-z0-9+.-]*:/i.test(u) && loc && loc.href) u = new URL(u, loc.href).href;
  return u.replace(/^http(s?):/i, "ws$1:");
}

function withToken(url, token) {
  if (token === undefined || token === null || token === "") return url;
  const hash = url.indexOf("#");
  const base = hash < 0 ? url : url.slice(0, hash);
  return base + (base.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(String(token));
}

/**
 * The errors the library reports, as rejections of `publish()` and through `error`
 * events. `code` says what happened: the server's own error codes (`forbidden`,
 * `unavailable`, `rate_limited`, `too_many_topics`, `too_many_subscriptions`,
 * `bad_token`, `internal`, ...) or the library's (`queue_overflow`, `closed`,
 * `timeout`, `too_big`, `bad_topic`, `bad_data`, `bad_id`, `listener`, `token`,
 * `bad_message`, `server`, `token_expired`, `internal`).
 */
class TickwireError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {object} [extra] more fields: topic, id, cause, event, closeCode
   */
  constructor(code, message, extra) {
    super(message);
    this.name = "TickwireError";
    /** @type {string} */
    this.code = code;
    if (extra) Object.assign(this, extra);
  }
}

/** A minimal event emitter whose listener exceptions go to `sink` instead of the page. */
class Emitter {
  constructor(sink) {
    this._listeners = new Map();
    this._sink = sink;
  }

  /**
   * Adds a listener.
   * @param {string} event
   * @param {Function} fn
   * @returns {() => void} a function that removes it
   */
  on(event, fn) {
    if (typeof fn !== "function") throw new TypeError("listener must be a function");
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** Removes a listener added with `on`. */
  off(event, fn) {
    const set = this._listeners.get(event);
    if (set) set.delete(fn);
  }

  _emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set || set.size === 0) return;
    for (const fn of [...set]) {
      try {
        fn.apply(this, args);
      } catch (e) {
        this._sink(e, event);
      }
    }
  }
}

/**
 * One subscriber's handle on a topic, returned by `Tickwire#subscribe`.
 *
 * Events:
 *  - `message` (msg): `{topic, seq, epoch, data}`, each seq once, in increasing order;
 *  - `subscribed` ({seq, epoch, recovered}): the server confirmed the (re)subscription;
 *    `recovered` is true/false after a resume with `since`, undefined on a first one.
 *    It comes after the snapshot or replayed messages it covers were delivered;
 *  - `gap` ({from, to, epoch, reason}): messages from..to (inclusive) of `epoch` that were
 *    lost for good; `to` is null when unknown (the topic's epoch changed, or `resync`):
 *    then from `from` on, how many (possibly none) nobody can say.
 *    reason: "history" (no longer in the server's history), "epoch" (the topic was
 *    recreated, e.g. the server restarted), "resync" (the server said so);
 *  - `error` (TickwireError): the server refused the subscription (`forbidden`,
 *    `too_many_subscriptions`, `too_many_topics`: the subscription then ends) or a
 *    transient refusal (`rate_limited`, `internal`, `unavailable`: retried).
 */
class Subscription extends Emitter {
  constructor(client, state) {
    super((e, ev) => client._listenerError(e, ev));
    this._client = client;
    this._ts = state;
    this._closed = false;
    /** The topic name. @type {string} */
    this.topic = state.topic;
  }

  /** The epoch of the last delivered message (null before the first `subscribed`). */
  get epoch() {
    return this._ts.epoch;
  }

  /** The seq of the last message delivered (or the topic's seq when subscribed). */
  get seq() {
    return this._ts.seq;
  }

  /** "pending" (not confirmed on the current connection), "live" or "closed". */
  get state() {
    if (this._closed) return "closed";
    return this._ts.live && !this._ts.awaiting ? "live" : "pending";
  }

  /** Stops this handle; the server subscription ends with the topic's last handle. */
  unsubscribe() {
    if (this._closed) return;
    this._closed = true;
    this._client._dropHandle(this);
  }
}

/**
 * A connection to a tickwire server that survives losses (DESIGN 9).
 *
 * States (the `state` event): "connecting" (a WebSocket is being opened), "open",
 * "reconnecting" (waiting `info.delay` ms before the next attempt), "closed" (for good:
 * `close()`, a terminal close code, or `maxRetries` exhausted).
 *
 * Events:
 *  - `state` (state, info): info = `{attempt, delay, code, reason, url}`. `attempt` is the
 *    number of reconnect attempts since the last stable connection (1 for the first
 *    retry); in "reconnecting", `delay` is the wait before attempt `attempt`, and `code`,
 *    `reason` say why the connection ended (1006 with reason "heartbeat timeout",
 *    "connect timeout" or "drop()" when the library itself gave up on it);
 *  - `pong` ({rtt, time}): a heartbeat answer and its round trip in ms (also `tw.rtt`);
 *  - `refreshed` ({exp}): the server accepted a refreshed token;
 *  - `error` (TickwireError): something the page should know but that stops nothing:
 *    a listener threw (`listener`, with `cause`), `token()` failed (`token`), a refresh was
 *    refused (`bad_token`), an unparseable frame (`bad_message`), a server error tied to
 *    no request (`server`), an exception inside the library itself (`internal`).
 */
class Tickwire extends Emitter {
  /**
   * @param {string|string[]} url  ws(s):// URL, or several tried in turn (relative URLs
   *   and http(s):// are resolved against the page)
   * @param {object} [options]
   * @param {string|(() => string|Promise<string>)} [options.token] a JWT, or a function
   *   called for every connection (sent as `?token=`) and on `token_expired`
   * @param {{interval?: number, timeout?: number}} [options.heartbeat] ms; default
   *   15000/45000. timeout must exceed interval
   * @param {{base?: number, max?: number, resetAfter?: number}} [options.backoff] ms;
   *   default 1000/30000; the attempt counter resets once a connection stayed open
   *   `resetAfter` ms (default 10000)
   * @param {number} [options.maxRetries] reconnect attempts in a row before "closed"
   *   (default Infinity; 0: never reconnect)
   * @param {{max?: number}} [options.queue] publishes kept while offline (default 1000)
   * @param {number} [options.publishTimeout] ms before a publish rejects with `timeout`
   *   (default Infinity: an offline publish waits for the connection)
   * @param {Function} [options.WebSocket] the WebSocket class (default
   *   globalThis.WebSocket; in Node pass the npm `ws` package's)
   * @param {string[]} [options.protocols] offered subprotocols (default ["tickwire.v1"])
   * @param {boolean} [options.connect] connect at once (default true; else call connect())
   * @param {() => number} [options.random] the jitter's source of [0, 1) (default
   *   Math.random; for tests)
   */
  constructor(url, options = {}) {
    super((e, ev) => this._listenerError(e, ev));
    const urls = (Array.isArray(url) ? url : [url]).map(resolveUrl);
    if (urls.length === 0) throw new TypeError("Tickwire: no URL");
    const hb = { ...DEFAULTS.heartbeat, ...options.heartbeat };
    const bo = { ...DEFAULTS.backoff, ...options.backoff };
    if (!(hb.interval > 0 && hb.timeout > hb.interval))
      throw new RangeError("Tickwire: heartbeat.timeout must exceed heartbeat.interval > 0");
    if (!(bo.base > 0 && bo.max >= 0)) throw new RangeError("Tickwire: bad backoff");
    const WS = options.WebSocket || globalThis.WebSocket;
    if (typeof WS !== "function")
      throw new TypeError("Tickwire: no WebSocket (pass options.WebSocket, e.g. npm ws)");

    this._urls = urls;
    this._urlIndex = 0;
    this._WS = WS;
    this._hb = hb;
    this._backoff = bo;
    this._maxRetries = options.maxRetries ?? DEFAULTS.maxRetries;
    this._queueMax = (options.queue && options.queue.max) ?? DEFAULTS.queue.max;
    this._publishTimeout = options.publishTimeout ?? DEFAULTS.publishTimeout;
    this._protocols = options.protocols || DEFAULTS.protocols;
    this._token = options.token;
    this._random = options.random || Math.random;

    this._state = "idle";
    this._info = { attempt: 0 };
    this._ws = null;
    this._gen = 0; // bumped whenever a connection ends: stale callbacks compare it
    this._ready = false; // open, and the resubscribes and queue flushed
    this._failures = 0; // reconnect attempts since the last stable connection
    this._timers = { retry: null, hb: null, stable: null };
    this._topics = new Map(); // topic -> per-topic state (shared by its handles)
    this._pubs = []; // unacknowledged publishes, oldest first
    this._expect = []; // requests on this connection waiting for their first answer
    this._rtt = null;
    this._pings = new Map(); // ping time value -> monotonic send time
    this._lastPingTime = 0;

    this._onOnline = this._safe(() => {
      if (this._state === "reconnecting") this.connect();
      else if (this._ready) this._ping(); // the network changed: prove the connection
    });
    this._onVisible = this._safe(() => {
      const d = globalThis.document;
      if (this._ready && d && d.visibilityState === "visible") this._hbCheck(this._gen);
    });
    if (typeof globalThis.addEventListener === "function")
      globalThis.addEventListener("online", this._onOnline);
    const doc = globalThis.document;
    if (doc && typeof doc.addEventListener === "function")
      doc.addEventListener("visibilitychange", this._onVisible);

    // Connect on the next microtask, so listeners added right after `new` see "connecting".
    if (options.connect !== false) this._soon(() => this._state === "idle" && this.connect());
  }

  /** "idle" (before connecting), "connecting", "open", "reconnecting" or "closed". */
  get state() {
    return this._state;
  }

  /** The info of the last `state` event ({attempt, delay, code, reason, url}). */
  get info() {
    return this._info;
  }

  /** The last heartbeat round trip in ms (null before the first pong). */
  get rtt() {
    return this._rtt;
  }

  /** The URL of the current (or next) connection attempt. */
  get url() {
    return this._urls[this._urlIndex];
  }

  /**
   * Connects now: starts a Tickwire made with `{connect: false}`, or skips the rest of a
   * reconnect delay. Does nothing while connecting or open, or once closed.
   */
  connect() {
    if (this._state !== "idle" && this._state !== "reconnecting") return;
    this._clearTimer("retry");
    this._open();
  }

  /**
   * Drops the current connection as a network failure would: the library reconnects
   * with its usual backoff and resumes every subscription (for demos and tests).
   */
  drop() {
    if (this._state === "open" || this._state === "connecting") this._lost(1006, "drop()");
  }

  /**
   * Ends everything: closes the connection (1000), rejects pending publishes with
   * `closed`, ends every subscription. The state becomes "closed" for good.
   */
  close() {
    if (this._state === "closed") return;
    this._detach(true);
    this._finish(1000, "close()");
  }

  /**
   * Subscribes to a topic. Several handles on one topic share one server subscription;
   * a later handle asking for a snapshot gets the last message the library delivered.
   * @param {string} topic 1-128 characters of [A-Za-z0-9._:-]
   * @param {{snapshot?: boolean}|Function} [options] snapshot: start with the topic's last
   *   value (its latest message), as market-data clients expect
   * @param {(msg: {topic: string, seq: number, epoch: string, data: any}) => void} [onMessage]
   * @returns {Subscription}
   */
  subscribe(topic, options, onMessage) {
    if (typeof options === "function") [options, onMessage] = [{}, options];
    options = options || {};
    if (typeof topic !== "string" || !TOPIC_RE.test(topic))
      throw new TickwireError("bad_topic", `bad topic ${JSON.stringify(topic)}: 1-128 of [A-Za-z0-9._:-]`);
    if (this._state === "closed") throw new TickwireError("closed", "this Tickwire is closed");
    let ts = this._topics.get(topic);
    const fresh = !ts;
    if (!ts) {
      ts = {
        topic,
        subs: new Set(),
        snapshot: !!options.snapshot,
        epoch: null, // of the last delivered message, or from `subscribed`
        seq: 0, // last delivered (or the topic's seq when confirmed)
        live: false, // subscribed on the current connection
        awaiting: 0, // subscribe requests sent and not yet answered
        since: false, // the last of them resumed with since
        buffer: [], // messages held while a subscribe is answered
        last: null, // last delivered message
        retry: null, // timer of a retried subscribe
      };
      this._topics.set(topic, ts);
    }
    const sub = new Subscription(this, ts);
    if (onMessage) sub.on("message", onMessage);
    ts.subs.add(sub);
    if (fresh) {
      if (this._ready) this._sendSubscribe(ts, false);
    } else if (ts.live && !ts.awaiting) {
      // The topic is live already: this handle starts from what the library has.
      const last = ts.last;
      this._soon(() => {
        if (sub._closed) return;
        if (options.snapshot && last) sub._emit("message", last);
        sub._emit("subscribed", { seq: ts.seq, epoch: ts.epoch, recovered: undefined });
      });
    }
    return sub;
  }

  /**
   * Publishes `data` (any JSON value) to `topic`. While the connection is not open the
   * publish waits in the offline queue (at most `queue.max`; the oldest is rejected with
   * `queue_overflow` beyond). Each publish carries an id, so one re-sent after a lost
   * ack is applied once: it then resolves with `duplicate: true`.
   * @param {string} topic
   * @param {any} data
   * @param {{id?: string, timeout?: number}} [options] id: your own idempotency id
   *   (1-64 of [A-Za-z0-9._:-]); timeout: ms, overrides `publishTimeout`
   * @returns {Promise<{seq: number, duplicate: boolean}>} (a publish left unawaited
   *   never becomes an unhandled rejection) rejects with a TickwireError:
   *   `forbidden`, `unavailable`, `rate_limited`, `too_many_topics`, `queue_overflow`,
   *   `closed`, `timeout`, `too_big`, `bad_topic`, `bad_data`, `bad_id`, ...
   */
  publish(topic, data, options = {}) {
    const promise = new Promise((resolve, reject) => {
      if (this._state === "closed")
        return reject(new TickwireError("closed", "this Tickwire is closed", { topic }));
      if (typeof topic !== "string" || !TOPIC_RE.test(topic))
        return reject(new TickwireError("bad_topic", `bad topic ${JSON.stringify(topic)}`, { topic }));
      let json;
      try {
        json = JSON.stringify(data);
      } catch (e) {
        return reject(new TickwireError("bad_data", "data is not JSON-serializable", { topic, cause: e }));
      }
      if (json === undefined)
        return reject(new TickwireError("bad_data", "data is not JSON-serializable", { topic }));
      const id = options.id ?? randomId();
      if (typeof id !== "string" || !ID_RE.test(id))
        return reject(new TickwireError("bad_id", "id must be 1-64 of [A-Za-z0-9._:-]", { topic, id }));
      const p = { topic, json, id, resolve, reject, sent: false, timer: null };
      const timeout = options.timeout ?? this._publishTimeout;
      if (Number.isFinite(timeout))
        p.timer = this._later(() => {
          const what = p.sent ? "sent, no answer yet: it may still be applied" : "still queued";
          this._settlePub(p, new TickwireError("timeout", `publish timed out (${what})`, { topic, id }));
        }, timeout);
      this._pubs.push(p);
      if (this._ready) this._sendPub(p);
      else this._boundQueue();
    });
    // A publish nobody awaits must not become an unhandled rejection (in Node, a crash)
    // when it fails: the caller's own chains still see the error.
    promise.catch(() => {});
    return promise;
  }

  // ---- connection ----

  _open() {
    const gen = ++this._gen;
    const url = this._urls[this._urlIndex];
    this._setState("connecting", { attempt: this._failures, url });
    if (gen !== this._gen) return; // a state listener closed or dropped it
    // The handshake (token included) gets one heartbeat timeout, like silence does.
    this._timers.hb = this._later(() => {
      if (gen === this._gen && !this._ready) this._lost(1006, "connect timeout");
    }, this._hb.timeout);
    let token;
    try {
      token = typeof this._token === "function" ? this._token() : this._token;
    } catch (e) {
      token = Promise.reject(e);
    }
    if (token && typeof token.then === "function")
      token.then(
        this._safe((t) => gen === this._gen && this._dial(gen, url, t)),
        this._safe((e) => {
          if (gen !== this._gen) return;
          this._error("token", "token() failed: " + (e && e.message), { cause: e });
          this._lost(1006, "token() failed");
        }),
      );
    else this._dial(gen, url, token);
  }

  _dial(gen, url, token) {
    let ws;
    try {
      ws = new this._WS(withToken(url, token), this._protocols);
    } catch (e) {
      this._error("server", `cannot open ${url}: ${e && e.message}`, { cause: e });
      return this._lost(1006, "cannot open: " + (e && e.message));
    }
    this._ws = ws;
    let lastError = "";
    ws.onopen = this._safe(() => gen === this._gen && this._onOpen(gen));
    ws.onmessage = this._safe((ev) => gen === this._gen && this._onMessage(gen, ev.data));
    ws.onerror = (ev) => {
      lastError = (ev && (ev.message || (ev.error && ev.error.message))) || "";
    };
    ws.onclose = this._safe((ev) => {
      if (gen !== this._gen) return;
      const code = ev && ev.code ? ev.code : 1006;
      const reason = (ev && ev.reason) || lastError;
      let hint;
      if (code === 1001 && reason) {
        try {
          const r = JSON.parse(reason).retry_ms;
          if (Number.isFinite(r) && r >= 0) hint = Math.min(r, 10 * 60 * 1000);
        } catch {
          // not a hint: plain backoff
        }
      }
      this._ws = null;
      if (code === 1009) {
        // Message too big. The server answered everything before it (nothing queued is
        // lost at a close, DESIGN 4), so it is the oldest publish still unanswered: sent
        // again it would only close the next connection too.
        const p = this._pubs.find((p) => p.sent);
        const msg = "the server closed with 1009: publish over its --max-message";
        if (p) this._settlePub(p, new TickwireError("too_big", msg, { topic: p.topic, id: p.id }));
      }
      this._lost(code, reason, hint);
    });
    // Node's npm ws surfaces protocol Pings/Pongs; any inbound frame proves liveness.
    if (typeof ws.on === "function") {
      const touch = () => gen === this._gen && (this._lastRx = Date.now());
      ws.on("ping", touch);
      ws.on("pong", touch);
    }
  }

  _onOpen(gen) {
    this._clearTimer("hb");
    const now = Date.now();
    this._lastRx = now;
    this._lastPingAt = now;
    this._graceStart = 0;
    this._graceUntil = 0;
    this._expect = [];
    this._pings.clear();
    this._ready = true;
    // Resubscribes first, then the queue, in order: a queued publish reaches a topic
    // this connection already listens to.
    for (const ts of this._topics.values()) this._sendSubscribe(ts, false);
    for (const p of this._pubs) if (!p.sent) this._sendPub(p);
    this._timers.stable = this._later(() => {
      if (gen === this._gen) this._failures = 0;
    }, this._backoff.resetAfter);
    this._ping();
    this._hbSchedule(now);
    const ws = this._ws;
    this._setState("open", { attempt: this._failures, url: this.url, protocol: ws && ws.protocol });
  }

  /** Ends the current connection (if any) and either reconnects or finishes. */
  _lost(code, reason, hint) {
    if (this._state === "closed") return;
    this._detach(false, reason);
    if (isTerminal(code)) return this._finish(code, reason);
    const attempt = this._failures + 1;
    if (attempt > this._maxRetries) return this._finish(code, reason);
    this._failures = attempt;
    const delay = hint ?? backoffDelay(attempt, this._backoff.base, this._backoff.max, this._random);
    this._urlIndex = (this._urlIndex + 1) % this._urls.length;
    this._setState("reconnecting", { attempt, delay, code, reason, url: this.url });
    if (this._state !== "reconnecting") return; // a listener closed or reconnected
    this._timers.retry = this._later(() => {
      this._timers.retry = null;
      if (this._state === "reconnecting") this._open();
    }, delay);
  }

  /**
   * Forgets the current socket and everything that lived on it. `graceful`: a Close
   * handshake (close()); otherwise the socket is given up at once (npm ws: terminate).
   */
  _detach(graceful, reason) {
    this._gen++;
    this._ready = false;
    for (const k of Object.keys(this._timers)) this._clearTimer(k);
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      const noop = () => {};
      ws.onopen = ws.onmessage = ws.onclose = noop;
      ws.onerror = noop; // npm ws throws an 'error' nobody listens to
      try {
        if (!graceful && typeof ws.terminate === "function") ws.terminate();
        else ws.close(1000, graceful ? "close()" : String(reason || "").slice(0, 100));
      } catch {
        // already closing
      }
    }
    this._expect = [];
    for (const p of this._pubs) p.sent = false; // unacknowledged: sent again, same id
    for (const ts of this._topics.values()) {
      ts.live = false;
      ts.awaiting = 0;
      ts.buffer = []; // re-requested with since; what cannot be recovered is a gap
      if (ts.retry) clearTimeout(ts.retry), (ts.retry = null);
    }
    this._boundQueue();
  }

  _finish(code, reason) {
    this._gen++;
    for (const k of Object.keys(this._timers)) this._clearTimer(k);
    const err = new TickwireError("closed", `closed (${code} ${reason || ""})`.trim(), { closeCode: code });
    const pubs = this._pubs;
    this._pubs = [];
    for (const p of pubs) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    for (const ts of this._topics.values()) {
      if (ts.retry) clearTimeout(ts.retry);
      for (const s of ts.subs) s._closed = true;
    }
    this._topics.clear();
    if (typeof globalThis.removeEventListener === "function")
      globalThis.removeEventListener("online", this._onOnline);
    const doc = globalThis.document;
    if (doc && typeof doc.removeEventListener === "function")
      doc.removeEventListener("visibilitychange", this._onVisible);
    this._setState("closed", { attempt: this._failures, code, reason });
  }

  _setState(state, info) {
    this._state = state;
    this._info = info;
    this._emit("state", state, info);
  }

  _clearTimer(name) {
    if (this._timers[name]) clearTimeout(this._timers[name]);
    this._timers[name] = null;
  }

  _send(obj) {
    const ws = this._ws;
    if (!ws || ws.readyState !== OPEN) return false;
    try {
      ws.send(typeof obj === "string" ? obj : JSON.stringify(obj));
      return true;
    } catch {
      return false; // closing under us: the close event follows
    }
  }

  // ---- liveness ----

  _ping() {
    let t = Date.now();
    if (t <= this._lastPingTime) t = this._lastPingTime + 1;
    this._lastPingTime = t;
    this._lastPingAt = Date.now();
    this._pings.set(t, monotonic());
    if (this._pings.size > 16) this._pings.delete(this._pings.keys().next().value);
    this._expect.push({ kind: "ping", time: t });
    this._send({ type: "ping", time: t });
  }

  _hbSchedule(now) {
    const { interval, timeout } = this._hb;
    const dead = Math.max(this._lastRx + timeout, this._graceUntil);
    const next = Math.min(this._lastPingAt + interval, dead);
    const gen = this._gen;
    this._hbDue = next;
    this._clearTimer("hb");
    this._timers.hb = this._later(() => this._hbCheck(gen), Math.max(0, next - now));
  }

  /**
   * The heartbeat timer. A timer that fires more than an interval late means this page
   * was not running (throttled, asleep): the silence it sees is not evidence, so it
   * pings and gives the answer `timeout - interval` (what a normal cycle gives its last
   * ping), unless a previous such grace already passed with nothing received.
   */
  _hbCheck(gen) {
    if (gen !== this._gen || !this._ready) return;
    const { interval, timeout } = this._hb;
    const now = Date.now();
    if (now - this._hbDue > interval) {
      if (this._graceStart && this._lastRx < this._graceStart && now >= this._graceUntil)
        return this._lost(1006, "heartbeat timeout");
      this._graceStart = now;
      this._graceUntil = now + Math.max(interval, timeout - interval);
      this._ping();
    } else if (now >= Math.max(this._lastRx + timeout, this._graceUntil)) {
      return this._lost(1006, "heartbeat timeout");
    } else if (now >= this._lastPingAt + interval) {
      this._ping();
    }
    this._hbSchedule(now);
  }

  // ---- inbound ----

  _onMessage(gen, raw) {
    this._lastRx = Date.now();
    if (typeof raw !== "string") return; // the protocol is JSON text
    let m;
    try {
      m = JSON.parse(raw);
    } catch {
      return this._error("bad_message", "the server sent a frame that is not JSON", { raw });
    }
    if (!m || typeof m !== "object") return;
    switch (m.type) {
      case "message":
        return this._onTopicMessage(m);
      case "subscribed":
        return this._onSubscribed(m);
      case "published":
        return this._onPublished(m);
      case "pong":
        return this._onPong(m);
      case "resync":
        return this._onResync(m);
      case "error":
        return this._onServerError(gen, m);
      case "unsubscribed":
        return this._answered((e) => e.kind === "unsubscribe" && e.topic === m.topic);
      case "refreshed":
        this._answered((e) => e.kind === "refresh");
        return this._emit("refreshed", { exp: m.exp });
      default:
        return; // newer servers may say more
    }
  }

  /**
   * The server answers each request at once and in order, but its errors name neither
   * the topic nor the publish id. So requests waiting for their first answer are kept
   * in order (`_expect`), and an answer settles its request and every older one.
   * Returns the settled entry.
   */
  _answered(match) {
    const i = this._expect.findIndex(match);
    if (i < 0) return null;
    const e = this._expect[i];
    this._expect.splice(0, i + 1);
    return e;
  }

  _onPong(m) {
    this._answered((e) => e.kind === "ping" && e.time === m.time);
    const sent = this._pings.get(m.time);
    if (sent === undefined) return;
    this._pings.delete(m.time);
    this._rtt = monotonic() - sent;
    this._emit("pong", { rtt: this._rtt, time: m.time });
  }

  // ---- subscriptions ----

  /** Sends a subscribe: a resume (since + epoch + snapshot) once the topic has an epoch. */
  _sendSubscribe(ts, fresh) {
    const msg = { type: "subscribe", topic: ts.topic };
    ts.since = !fresh && ts.epoch !== null;
    if (ts.since) {
      msg.since = ts.seq;
      msg.epoch = ts.epoch;
      msg.snapshot = true; // used by the server only if it cannot replay (new epoch)
    } else if (ts.snapshot || fresh) {
      msg.snapshot = true;
    }
    ts.awaiting++;
    this._expect.push({ kind: "subscribe", ts, live: ts.live });
    this._send(msg);
  }

  _onTopicMessage(m) {
    const ts = this._topics.get(m.topic);
    if (!ts || !Number.isSafeInteger(m.seq)) return;
    if (ts.awaiting) {
      // A snapshot or replay (or live ones still in flight before the server took our
      // resubscribe): held until `subscribed` says which epoch they belong to.
      ts.buffer.push(m);
      // Not yet live on this connection: the message can only be the subscribe's answer.
      if (!ts.live) this._answered((e) => e.kind === "subscribe" && e.ts === ts);
      return;
    }
    if (!ts.live || m.seq <= ts.seq) return; // a duplicate, or late for an old subscription
    if (m.seq === ts.seq + 1) return this._deliver(ts, m);
    // A jump while live: the server conflated for a slow reader. Recover the missing range.
    ts.buffer = [m];
    this._sendSubscribe(ts, false);
  }

  _onSubscribed(m) {
    const ts = this._topics.get(m.topic);
    if (!ts || !ts.awaiting) return;
    this._answered((e) => e.kind === "subscribe" && e.ts === ts);
    if (--ts.awaiting > 0) return; // a later subscribe supersedes this answer
    const buf = ts.buffer.sort((a, b) => a.seq - b.seq);
    ts.buffer = [];
    ts.live = true;
    const same = ts.epoch === m.epoch;
    // A resume reports what it missed: in the same epoch, exactly the holes; across a new
    // epoch (the topic was recreated: the server restarted, a broker lost it) one gap to an
    // unknown end, since nobody can say what the old epoch held after our last seq. The
    // new epoch then starts from its snapshot, as a first subscribe does.
    const gaps = ts.since && same;
    if (ts.epoch !== null && !same) {
      if (ts.since) this._gap(ts, ts.seq + 1, null, "epoch");
      ts.seq = 0;
    }
    ts.epoch = m.epoch;
    // Without since, or in a new epoch, the server sent only the snapshot (seq = m.seq):
    // anything else held was still in flight from before and belongs to no epoch we know.
    const snapshotOnly = !ts.since || !same;
    for (const x of buf) {
      if (x.seq <= ts.seq) continue;
      if (snapshotOnly && x.seq !== m.seq) continue;
      if (gaps && x.seq > ts.seq + 1) this._gap(ts, ts.seq + 1, x.seq - 1, "history");
      this._deliver(ts, x);
    }
    if (m.seq > ts.seq) {
      if (gaps) this._gap(ts, ts.seq + 1, m.seq, "history");
      ts.seq = m.seq;
    }
    for (const s of ts.subs)
      s._emit("subscribed", { seq: m.seq, epoch: m.epoch, recovered: m.recovered });
  }

  _onResync(m) {
    const ts = this._topics.get(m.topic);
    // Also while a (re)subscribe on this connection is unanswered: a cluster node may find
    // the position invalid while it backfills, before it says `subscribed`.
    if (!ts || !this._ready || (!ts.live && !ts.awaiting)) return;
    if (ts.epoch !== null) this._gap(ts, ts.seq + 1, null, "resync");
    ts.buffer = [];
    this._sendSubscribe(ts, true);
  }

  _deliver(ts, m) {
    ts.seq = m.seq;
    const msg = { topic: ts.topic, seq: m.seq, epoch: ts.epoch, data: m.data };
    ts.last = msg;
    for (const s of ts.subs) s._emit("message", msg);
  }

  _gap(ts, from, to, reason) {
    if (to !== null && to < from) return;
    const g = { from, to, epoch: ts.epoch, reason };
    for (const s of ts.subs) s._emit("gap", g);
  }

  _dropHandle(sub) {
    const ts = sub._ts;
    ts.subs.delete(sub);
    if (ts.subs.size || this._topics.get(ts.topic) !== ts) return;
    this._topics.delete(ts.topic);
    if (ts.retry) clearTimeout(ts.retry);
    if (this._ready) {
      this._expect.push({ kind: "unsubscribe", topic: ts.topic });
      this._send({ type: "unsubscribe", topic: ts.topic });
    }
  }

  /** Ends a topic's subscription on a refusal the server will repeat. */
  _endTopic(ts, err) {
    if (this._topics.get(ts.topic) === ts) this._topics.delete(ts.topic);
    if (ts.retry) clearTimeout(ts.retry);
    for (const s of ts.subs) {
      s._closed = true;
      s._emit("error", err);
    }
  }

  // ---- publishes ----

  _sendPub(p) {
    p.sent = true;
    this._expect.push({ kind: "publish", p });
    this._send(`{"type":"publish","topic":${JSON.stringify(p.topic)},"data":${p.json},"id":"${p.id}"}`);
  }

  _onPublished(m) {
    const e = this._answered((e) => e.kind === "publish" && e.p.id === m.id);
    const p = e ? e.p : this._pubs.find((p) => p.id === m.id && p.topic === m.topic);
    if (p) this._settlePub(p, null, { seq: m.seq, duplicate: m.duplicate === true });
  }

  _settlePub(p, err, value) {
    const i = this._pubs.indexOf(p);
    if (i < 0) return; // settled already
    this._pubs.splice(i, 1);
    if (p.timer) clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(value);
  }

  /** The offline queue's bound: the oldest unsent publishes go first. */
  _boundQueue() {
    let unsent = 0;
    for (const p of this._pubs) if (!p.sent) unsent++;
    while (unsent > this._queueMax) {
      const p = this._pubs.find((p) => !p.sent);
      unsent--;
      this._settlePub(
        p,
        new TickwireError("queue_overflow", `offline queue full (queue.max ${this._queueMax}): oldest publish dropped`, {
          topic: p.topic,
          id: p.id,
        }),
      );
    }
  }

  // ---- tokens ----

  _refresh(gen) {
    if (typeof this._token !== "function")
      return this._error("token_expired", "the token expired and no token() function was given to refresh it");
    Promise.resolve()
      .then(() => this._token())
      .then(
        this._safe((t) => {
          if (gen !== this._gen) return; // that connection is gone; the next gets a new token
          this._expect.push({ kind: "refresh" });
          this._send({ type: "refresh", token: String(t) });
        }),
        this._safe((e) => gen === this._gen && this._error("token", "token() failed: " + (e && e.message), { cause: e })),
      );
  }

  // ---- errors ----

  _onServerError(gen, m) {
    const code = typeof m.code === "string" ? m.code : "server";
    const text = typeof m.message === "string" ? m.message : code;
    if (code === "token_expired") return this._refresh(gen);
    const ts0 = typeof m.topic === "string" ? this._topics.get(m.topic) : null;
    if (ts0 && typeof m.id !== "string") {
      // Not an answer: the server ended this subscription (a refreshed token no longer
      // allows it).
      this._answered((e) => e.kind === "subscribe" && e.ts === ts0);
      return this._endTopic(ts0, new TickwireError(code, text, { topic: m.topic }));
    }
    const e = this._answered((e) => this._couldAnswer(e, code, text, m));
    if (!e) return this._error("server", `server error ${code}: ${text}`, { serverCode: code });
    if (e.kind === "publish") {
      const { topic, id } = e.p;
      return this._settlePub(e.p, new TickwireError(code, text, { topic, id }));
    }
    if (e.kind === "subscribe") {
      const ts = e.ts;
      if (this._topics.get(ts.topic) !== ts) return;
      ts.awaiting = Math.max(0, ts.awaiting - 1);
      const err = new TickwireError(code, text, { topic: ts.topic });
      if (code === "rate_limited" || code === "internal" || code === "unavailable") {
        for (const s of ts.subs) s._emit("error", err);
        const g = this._gen;
        if (ts.retry) clearTimeout(ts.retry);
        ts.retry = this._later(() => {
          ts.retry = null;
          if (g === this._gen && this._ready && this._topics.get(ts.topic) === ts) this._sendSubscribe(ts, false);
        }, this._backoff.base);
        return;
      }
      return this._endTopic(ts, err);
    }
    if (e.kind === "refresh") return this._error(code, `token refresh refused: ${text}`);
    // a ping or unsubscribe refused (rate_limited): nothing to do
  }

  /** Whether request `e` could be the one that error `code` answers. */
  _couldAnswer(e, code, text, m) {
    if (typeof m.id === "string") return e.kind === "publish" && e.p.id === m.id;
    switch (code) {
      case "bad_token":
        return e.kind === "refresh";
      case "too_many_subscriptions":
        return e.kind === "subscribe" && !e.live;
      case "forbidden":
        if (/publish/i.test(text)) return e.kind === "publish";
        if (/subscri/i.test(text)) return e.kind === "subscribe" && !e.live;
        return e.kind === "publish" || (e.kind === "subscribe" && !e.live);
      case "too_many_topics":
        return e.kind === "publish" || (e.kind === "subscribe" && !e.live);
      case "internal":
      case "unavailable":
        return e.kind === "publish" || e.kind === "subscribe";
      default:
        return true; // rate_limited and the like: whatever was sent first
    }
  }

  /** `fn` guarded: an exception in it (a bug here) becomes an `error` event, not the page's. */
  _safe(fn) {
    return (...args) => {
      try {
        return fn(...args);
      } catch (e) {
        this._error("internal", "tickwire.js: " + (e && e.message), { cause: e });
      }
    };
  }

  _later(fn, ms) {
    return setTimeout(this._safe(fn), ms);
  }

  _soon(fn) {
    queueMicrotask(this._safe(fn));
  }

  _error(code, message, extra) {
    this._emit("error", new TickwireError(code, message, extra));
  }

  /** A listener threw: reported as an `error` event, never into the page. */
  _listenerError(e, event) {
    if (event === "error") return; // an error listener that throws: nowhere left to report
    this._error("listener", `a "${event}" listener threw: ${e && e.message}`, { cause: e, event });
  }
}

export { Tickwire, TickwireError, Subscription, backoffDelay };
