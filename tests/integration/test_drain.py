"""SIGTERM: stop accepting, /healthz 503, Close 1001 with a spread reconnect hint, wait for
the replies (or drain-timeout), exit 0."""
import json
import signal
import socket
import struct
import time
import unittest

import twtest
from twtest import Server, WS


class Drain(unittest.TestCase):
    def test_drain_sends_1001_with_spread_retry_hint(self):
        srv = Server("--drain-timeout", "3s", "--reconnect-spread", "5s")
        clients = [WS(srv.port) for _ in range(30)]
        hc = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        hc.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(twtest.read_response(hc)[0], 200)

        srv.proc.send_signal(signal.SIGTERM)
        hints = []
        for w in clients:
            reason = w.expect_close(1001)
            hints.append(json.loads(reason)["retry_ms"])
            w.send_frame(0x8, struct.pack("!H", 1001))  # reply, as a browser would
        self.assertTrue(all(0 <= h < 5000 for h in hints), hints)
        self.assertGreater(len(set(hints)), 20, "hints must be spread, got %r" % hints)
        self.assertGreater(max(hints) - min(hints), 2000)

        hc.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(twtest.read_response(hc)[0], 503)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).recv(1)

        t0 = time.time()
        self.assertEqual(srv.proc.wait(10), 0)
        # every client replied, so only the keep-alive checker holds the drain open
        self.assertLess(time.time() - t0, 4)
        srv.stop()
        for w in clients:
            self.assertTrue(w.wait_eof(1))
            w.close()
        hc.close()

    def test_drain_timeout_bounds_exit_when_clients_ignore_close(self):
        srv = Server("--drain-timeout", "1s")
        w = WS(srv.port)
        t0 = time.time()
        srv.proc.send_signal(signal.SIGTERM)
        w.expect_close(1001)  # and never answer
        self.assertEqual(srv.proc.wait(10), 0)
        self.assertLess(time.time() - t0, 3)
        self.assertTrue(w.wait_eof(1))
        srv.stop()
        w.close()


if __name__ == "__main__":
    unittest.main()
