"""--max-queue must bound a connection's queued output in every state, not only once it is
a WebSocket session. An HTTP keep-alive client that pipelines requests and never reads the
answers makes the server queue every response: /metrics answers ~5 KB to a 36-byte request,
so one client can grow the server by hundreds of MB (DESIGN: "Server memory must stay
bounded no matter how many clients stop reading").

The bound must come from back-pressure, not from dropping the client (issue 9 item 17: this
test used to pass when the server closed the connection at once). So: while the client
pipelines 30,000 requests (cycling /metrics x 3, /healthz and a 404) without reading, with a
small SO_RCVBUF, the connection stays open and the server's RSS stays bounded; once the
client reads, it gets a valid answer for every complete request it managed to send, in
order (at least as many answers as requests accepted)."""
import time
import unittest

from twtest import Server, connect_small, parse_responses, peer_closed

METRICS = (b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 200, b"tickwire_connections")
REQS = [METRICS, METRICS, METRICS,
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 200, b"ok\n"),
        (b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 404, None)]
COUNT = 30000  # ~90 MB of answers (18,000 x /metrics) if all are queued


class HttpQueueBound(unittest.TestCase):
    def test_pipelined_requests_without_reading_stay_bounded(self):
        # A long --handshake-timeout: the per-request head deadline is not what this
        # checks, and the next head waits unread while the server holds back.
        with Server("--max-queue", "64KiB", "--handshake-timeout", "30s", workers=1) as srv:
            rss0 = srv.rss_kib()
            s = connect_small(srv.port, 4096)
            self.addCleanup(s.close)
            data = b"".join(REQS[i % len(REQS)][0] for i in range(COUNT))
            ends, pos = [], 0  # where each request ends in data
            for i in range(COUNT):
                pos += len(REQS[i % len(REQS)][0])
                ends.append(pos)
            s.setblocking(False)
            off = 0
            last_progress = time.time()
            deadline = time.time() + 10
            while off < len(data) and time.time() < deadline:
                try:
                    off += s.send(data[off:off + 65536])
                    last_progress = time.time()
                except BlockingIOError:
                    if time.time() - last_progress > 2:
                        break  # the server applies back-pressure: the point of the test
                    time.sleep(0.01)
                except OSError as e:
                    self.fail("the server dropped a client that pipelines requests (%r after "
                              "%d bytes): the bound must be back-pressure" % (e, off))
            accepted = sum(1 for e in ends if e <= off)
            time.sleep(1.5)
            grown_mib = (srv.rss_kib() - rss0) / 1024
            self.assertLess(grown_mib, 48,
                            "server RSS grew %.0f MiB for one client that does not read "
                            "(--max-queue 64KiB); %d requests accepted" % (grown_mib, accepted))
            self.assertFalse(peer_closed(s), "the server closed a client that pipelines "
                             "requests without reading (%d requests sent)" % accepted)
            s.setblocking(True)
            s.settimeout(10)
            answers, buf = [], b""
            read_deadline = time.time() + 40
            while len(answers) < accepted and time.time() < read_deadline:
                chunk = s.recv(262144)
                if not chunk:
                    break
                got, buf = parse_responses(buf + chunk)
                answers += [(st, body) for st, _, body in got]
            self.assertGreaterEqual(len(answers), accepted,
                                    "%d answers to %d requests sent" % (len(answers), accepted))
            for i, (st, body) in enumerate(answers[:accepted]):
                _, want_st, want_body = REQS[i % len(REQS)]
                self.assertEqual(st, want_st, "answer %d out of order" % i)
                if want_body == b"ok\n":
                    self.assertEqual(body, want_body, "answer %d" % i)
                elif want_body:
                    self.assertIn(want_body, body, "answer %d" % i)


if __name__ == "__main__":
    unittest.main()
