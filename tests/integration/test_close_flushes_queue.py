"""Nothing queued is lost at a close (DESIGN 4, issue 9 item 1). Every byte queued before the
last HTTP answer of a `Connection: close` request, or before our Close frame, goes out
before it, however many sends that takes (short writes, more than 1,024 iovecs), and the
Close frame itself always goes out. Each case makes a big backlog while the client does not
read (small SO_RCVBUF), then reads it all:

- 1,500 pipelined keep-alive GET /healthz and one `Connection: close`: 1,501 answers, then
  a clean EOF (before: 1,024 answers, then EOF);
- a subscriber with 1,500 x 4 KB queued sends Close 1000: every seq 1..1500 in order, the
  Close 1000 echo, then EOF (before: ~850 messages, no Close);
- the same backlog, then a protocol error (an unmasked frame): every message, then Close
  1002, then EOF (before: the 1002 never arrived).
--close-timeout is long (30 s) so that a timeout cannot cut a correct flush short on a slow
machine: after its last answer or Close the server shuts down its write side (DESIGN 4),
so the client sees EOF right after it without the timeout playing a part."""
import json
import struct
import time
import unittest

import twtest
from twtest import Server, WS, connect_small, frame, parse_frames, parse_responses, read_to_end

N = 1500
PAD = "x" * 4000  # ~4 KB messages: ~6 MB of backlog, far beyond the socket buffers
RCVBUF = 4096


def publish_backlog(port, topic, n):
    """Publishes n ~4 KB messages over a WebSocket, waiting for every `published`."""
    p = WS(port)
    for start in range(0, n, 100):
        count = min(100, n - start)
        p.send(b"".join(frame(0x1, ('{"type":"publish","topic":"%s","data":{"i":%d,"pad":"%s"}}'
                                    % (topic, start + i + 1, PAD)).encode())
                        for i in range(count)))
        for _ in range(count):
            r = json.loads(p.recv_text(timeout=20))
            assert r["type"] == "published", r
    p.close()


class CloseFlushesQueue(unittest.TestCase):
    def test_pipelined_http_then_connection_close(self):
        with Server("--close-timeout", "30s", workers=1) as srv:
            s = connect_small(srv.port, RCVBUF)
            self.addCleanup(s.close)
            req = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
            last = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            s.settimeout(20)
            s.sendall(req * N + last)  # ~60 KB: the server reads it all, we read nothing
            time.sleep(1.0)  # let it answer everything into its queue
            data, how = read_to_end(s, timeout=30)
            answers, rest = parse_responses(data)
            self.assertEqual(len(answers), N + 1,
                             "got %d complete answers to %d requests, then %s (%d bytes over)"
                             % (len(answers), N + 1, how, len(rest)))
            self.assertTrue(all(a[0] == 200 and a[2] == b"ok\n" for a in answers))
            self.assertEqual(rest, b"", "bytes after the last answer")
            self.assertEqual(how, "eof", "after the last answer: %s instead of a clean EOF"
                             % how)
            s.close()  # our FIN ends the server's lingering close

    def backlog_then(self, srv, topic, trigger):
        """A non-reading subscriber gets N messages queued, then sends `trigger`, then reads
        everything: (seqs of the messages, close payload or None, how the stream ended)."""
        sub = WS(srv.port, rcvbuf=RCVBUF)
        self.addCleanup(sub.close)
        sub.send_text('{"type":"subscribe","topic":"%s"}' % topic)
        self.assertEqual(json.loads(sub.recv_text())["type"], "subscribed")
        publish_backlog(srv.port, topic, N)
        time.sleep(0.5)  # one worker: everything published is in the subscriber's queue
        sub.send(trigger)
        time.sleep(0.5)  # let the server see it while its queue is still full
        data, how = read_to_end(sub.sock, timeout=40)
        frames, rest = parse_frames(sub.buf + data)
        seqs, close = [], None
        for fin, op, payload in frames:
            self.assertIsNone(close, "a frame after the Close: opcode %d" % op)
            if op == 0x1:
                m = json.loads(payload)
                self.assertEqual(m["type"], "message", m)
                seqs.append(m["seq"])
            elif op == 0x8:
                close = payload
        self.assertEqual(rest, b"", "a partial frame before the end (%s)" % how)
        sub.close()  # our FIN ends the server's lingering close
        return seqs, close, how

    def check_everything_then_close(self, seqs, close, how, code):
        self.assertEqual(len(seqs), N, "received %d of %d queued messages (last seq %s), "
                         "close frame %r, then %s" % (len(seqs), N, seqs[-1] if seqs else None,
                                                      close, how))
        self.assertEqual(seqs, list(range(1, N + 1)), "seqs out of order or duplicated")
        self.assertIsNotNone(close, "no Close frame after the messages (stream ended: %s)"
                             % how)
        self.assertEqual(twtest.close_code(close), code)
        self.assertEqual(how, "eof", "after the Close: %s instead of EOF" % how)

    def test_backlog_then_client_close_1000(self):
        with Server("--max-queue", "64MiB", "--close-timeout", "30s", workers=1) as srv:
            seqs, close, how = self.backlog_then(srv, "flush.c", frame(0x8, struct.pack(
                "!H", 1000)))
            self.check_everything_then_close(seqs, close, how, 1000)

    def test_backlog_then_protocol_error_1002(self):
        with Server("--max-queue", "64MiB", "--close-timeout", "30s", workers=1) as srv:
            seqs, close, how = self.backlog_then(srv, "flush.e", frame(
                0x1, b'{"type":"ping","time":1}', mask=False))
            self.check_everything_then_close(seqs, close, how, 1002)


if __name__ == "__main__":
    unittest.main()
