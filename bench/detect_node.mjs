// The client half of bench/detect --real with the project's own client library: N
// tickwire.js clients (Node, the npm "ws" package of tests/js as WebSocket) on one URL,
// heartbeat {interval, timeout}; each records the wall-clock moment its heartbeat gave up
// on the server (state "reconnecting" with reason "heartbeat timeout") and stops there.
// Prints one JSON line: {"opened": n, "dead_unix_ms": [...], "other": [...]}.
//
//   node bench/detect_node.mjs URL N INTERVAL_MS TIMEOUT_MS DURATION_MS
import WebSocket from "../tests/js/node_modules/ws/wrapper.mjs";
import { Tickwire } from "../src/js/tickwire.js";

const [url, n, interval, timeout, duration] = process.argv.slice(2);
const out = { opened: 0, dead_unix_ms: [], other: [] };
const clients = [];

for (let i = 0; i < Number(n); i++) {
  const tw = new Tickwire(url, {
    heartbeat: { interval: Number(interval), timeout: Number(timeout) },
    WebSocket,
  });
  let wasOpen = false;
  tw.on("state", (state, info) => {
    if (state === "open" && !wasOpen) {
      wasOpen = true;
      out.opened++;
    } else if (wasOpen && state === "reconnecting") {
      if (info.reason === "heartbeat timeout") out.dead_unix_ms.push(Date.now());
      else out.other.push({ t: Date.now(), code: info.code, reason: info.reason });
      tw.close();
    }
  });
  clients.push(tw);
}

setTimeout(() => {
  for (const tw of clients) tw.close();
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}, Number(duration));
