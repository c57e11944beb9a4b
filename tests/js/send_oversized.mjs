// Usage: node send_oversized.mjs URL SIZE COUNT
// On each of COUNT fresh connections, sends one text message of SIZE bytes and prints the
// close code the client observed (one line per connection; "timeout" if no close came
// within 30 s). A server that closes over --max-message must be seen closing with 1009:
// a client still writing its message when the server gives up reads 1006 instead if the
// server resets the connection (issue 9 item 2).
import WebSocket from 'ws';

const [url, sizeArg, countArg] = process.argv.slice(2);
const size = Number(sizeArg);
const count = Number(countArg);
if (!url || !(size > 0) || !(count > 0)) {
  console.error('usage: node send_oversized.mjs URL SIZE COUNT');
  process.exit(2);
}
const message = 'x'.repeat(size);

function once() {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('timeout');
    }, 30000);
    ws.on('open', () => ws.send(message));
    ws.on('error', () => {}); // a reset surfaces as close 1006 right after
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve(String(code));
    });
  });
}

for (let i = 0; i < count; i++) {
  console.log(await once());
}
