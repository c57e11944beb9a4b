"""5,000 connections opened, used and closed every way a client can end: no leak. The
connections gauge returns to zero and the server's RSS returns near where it started."""
import socket
import struct
import time
import unittest

import twtest
from twtest import Server, WS, metrics


class ManyConnections(unittest.TestCase):
    def test_5000_connections_no_leak(self):
        with Server() as srv:
            m0 = metrics(srv.port)
            rss0 = srv.rss_kib()
            for rnd in range(2):
                clients = [WS(srv.port) for _ in range(2500)]
                for i, w in enumerate(clients):
                    kind = i % 4
                    if kind == 0:  # graceful close
                        w.send_frame(0x8, struct.pack("!H", 1000))
                    elif kind == 1:  # browser killed: RST
                        w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
                        w.close()
                    elif kind == 2:  # FIN without Close
                        w.close()
                    else:  # message, then close
                        w.send_text('{"type":"ping","time":1}')
                        w.send_frame(0x8, struct.pack("!H", 1001))
                for w in clients:
                    if w.sock.fileno() >= 0:
                        w.wait_eof(5)
                        w.close()
            gauge = twtest.wait_for(lambda: metrics(srv.port)["tickwire_connections"] <= 1)
            m = metrics(srv.port)
            self.assertEqual(m["tickwire_connections"], 1)  # the scrape itself
            # each ending counted exactly once, under the code it deserves
            closes = {c: m['tickwire_closes_total{code="%s"}' % c] -
                      m0['tickwire_closes_total{code="%s"}' % c] for c in ("1000", "1001", "1006")}
            self.assertEqual(closes, {"1000": 1250, "1001": 1250, "1006": 2500})
            rss1 = srv.rss_kib()
            # recv buffers and allocator caches are allowed; per-connection state is not
            if not twtest.SANITIZED:
                self.assertLess(rss1 - rss0, 8 * 1024, "RSS grew %d KiB" % (rss1 - rss0))


if __name__ == "__main__":
    unittest.main()
