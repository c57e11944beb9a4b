"""Browser-facing policy (DESIGN 6): an upgrade's Origin must be absent (not a browser),
the server's own host (same origin: the demo page), or match --allowed-origin (where *
stands for one or more DNS labels); others get 403, counted reason="origin" — no
cross-site WebSocket hijacking. POST /publish needs Content-Type: application/json (415:
a no-CORS form post is text/plain) and an allowed origin; OPTIONS /publish answers the
CORS preflight for allowed origins only. The tickwire.v1 subprotocol is selected when
offered."""
import unittest

from twtest import Server, WS, http, metrics, upgrade_request


class Origins(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--allowed-origin", "https://*.example.com",
                         "--allowed-origin", "http://localhost:3000", workers=1)
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def status(self, origin, host="t"):
        extra = "Origin: %s\r\n" % origin if origin else ""
        raw = upgrade_request(extra=extra)[1].replace(b"Host: t", b"Host: " + host.encode())
        return http(self.port, raw)[0]

    def test_upgrade_origins(self):
        before = metrics(self.port)['tickwire_handshake_failures_total{reason="origin"}']
        self.assertEqual(self.status(None), 101)
        self.assertEqual(self.status("http://127.0.0.1:%d" % self.port,
                                     "127.0.0.1:%d" % self.port), 101)  # same origin
        self.assertEqual(self.status("https://app.example.com"), 101)
        self.assertEqual(self.status("https://a.b.example.com"), 101)
        self.assertEqual(self.status("http://localhost:3000"), 101)
        refused = ["https://example.com", "http://app.example.com", "https://evil.com",
                   "https://app.example.com.evil.com", "http://localhost:3001", "null"]
        for o in refused:
            self.assertEqual(self.status(o), 403, o)
        after = metrics(self.port)['tickwire_handshake_failures_total{reason="origin"}']
        self.assertEqual(after, before + len(refused))

    def test_publish_content_type_and_cors(self):
        def post(ctype, origin=None):
            extra = ("Content-Type: %s\r\n" % ctype if ctype else "") + \
                    ("Origin: %s\r\n" % origin if origin else "")
            raw = ("POST /publish?topic=c HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n%s"
                   "Connection: close\r\n\r\n1" % extra).encode()
            return http(self.port, raw)
        self.assertEqual(post("text/plain")[0], 415)
        self.assertEqual(post(None)[0], 415)
        self.assertEqual(post("application/json; charset=utf-8")[0], 200)
        st, headers, _ = post("application/json", "https://app.example.com")
        self.assertEqual(st, 200)
        self.assertEqual(headers.get("access-control-allow-origin"), "https://app.example.com")
        self.assertEqual(post("application/json", "https://evil.com")[0], 403)

        def preflight(origin):
            raw = ("OPTIONS /publish HTTP/1.1\r\nHost: t\r\nOrigin: %s\r\n"
                   "Access-Control-Request-Method: POST\r\n"
                   "Access-Control-Request-Headers: content-type, authorization\r\n"
                   "Connection: close\r\n\r\n" % origin).encode()
            return http(self.port, raw)
        st, headers, _ = preflight("https://app.example.com")
        self.assertEqual(st, 204)
        self.assertEqual(headers.get("access-control-allow-origin"), "https://app.example.com")
        self.assertIn("POST", headers.get("access-control-allow-methods", ""))
        allowed = headers.get("access-control-allow-headers", "").lower()
        self.assertIn("authorization", allowed)
        self.assertIn("content-type", allowed)
        self.assertEqual(preflight("https://evil.com")[0], 403)

    def test_subprotocol(self):
        w = WS(self.port, extra="Sec-WebSocket-Protocol: chat, tickwire.v1\r\n")
        self.assertEqual(w.headers.get("sec-websocket-protocol"), "tickwire.v1")
        w.close()
        w = WS(self.port, extra="Sec-WebSocket-Protocol: chat\r\n")
        self.assertNotIn("sec-websocket-protocol", w.headers)
        w.close()


class AnyOrigin(unittest.TestCase):
    def test_star_allows_any_and_warns(self):
        with Server("--allowed-origin", "*", workers=1) as srv:
            raw = upgrade_request(extra="Origin: https://anything.test\r\n")[1]
            self.assertEqual(http(srv.port, raw)[0], 101)
            self.assertTrue(any("warning" in l and "allowed-origin" in l for l in srv.lines),
                            srv.lines)


if __name__ == "__main__":
    unittest.main()
