"""A keep-alive HTTP client (a Prometheus scraper, a health checker) that closes its
connection after a served request did not fail a WebSocket handshake. The same /healthz
with `Connection: close` counts nothing; with keep-alive the server counts
handshake_failures_total{reason="closed"} for every such client, so a scraper alone makes
that alarm metric climb."""
import socket
import time
import unittest

from twtest import Server, metrics, read_response

KEY = 'tickwire_handshake_failures_total{reason="closed"}'


class KeepAliveMetrics(unittest.TestCase):
    def test_keepalive_client_closing_after_response_is_not_a_handshake_failure(self):
        with Server(workers=1) as srv:
            before = metrics(srv.port).get(KEY, 0)
            for _ in range(3):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                status, _, body = read_response(s)
                self.assertEqual((status, body), (200, b"ok\n"))
                s.close()
            time.sleep(0.3)
            after = metrics(srv.port).get(KEY, 0)
            self.assertEqual(after - before, 0,
                             "3 served keep-alive /healthz clients counted as failed handshakes")


if __name__ == "__main__":
    unittest.main()
