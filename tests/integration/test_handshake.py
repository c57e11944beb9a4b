"""The HTTP side: upgrade success and every rejection, the small endpoints, limits."""
import socket
import time
import unittest

import twtest
from twtest import Server, WS, http, get, metrics, upgrade_request


class Handshake(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--handshake-timeout", "700ms", "--max-message", "64KiB")
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def req(self, text):
        return http(self.port, text.encode())

    def test_upgrade_succeeds_with_correct_accept(self):
        ws = WS(self.port)  # asserts the Sec-WebSocket-Accept value
        self.assertEqual(ws.headers["upgrade"].lower(), "websocket")
        ws.close()

    def test_upgrade_with_pipelined_frame(self):
        key, req = upgrade_request()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(req + twtest.frame(0x1, b'{"type":"ping","time":7}'))
        data = b""
        while b'"pong"' not in data:
            chunk = s.recv(4096)
            self.assertTrue(chunk, data)
            data += chunk
        self.assertIn(b"101 Switching Protocols", data)
        self.assertIn(b'{"type":"pong","time":7}', data)
        s.close()

    def test_connection_token_list_and_case(self):
        key, req = upgrade_request()
        req = req.replace(b"Connection: Upgrade", b"Connection: keep-alive, UPGRADE")
        req = req.replace(b"Upgrade: websocket", b"Upgrade: WebSocket")
        st, _, _ = self.req(req.decode())
        self.assertEqual(st, 101)

    def test_missing_key_is_400(self):
        _, req = upgrade_request()
        req = b"\r\n".join(l for l in req.split(b"\r\n") if not l.startswith(b"Sec-WebSocket-Key"))
        self.assertEqual(http(self.port, req)[0], 400)

    def test_short_key_is_400(self):
        _, req = upgrade_request(key="c2hvcnQ=")
        self.assertEqual(http(self.port, req)[0], 400)

    def test_wrong_version_is_426_with_version(self):
        """RFC 6455 4.4 / DESIGN 6: the answer names the version the server speaks."""
        _, req = upgrade_request()
        st, hdrs, _ = http(self.port, req.replace(b"Version: 13", b"Version: 8"))
        self.assertEqual(st, 426)
        self.assertEqual(hdrs.get("sec-websocket-version"), "13")

    def test_post_upgrade_is_400(self):
        _, req = upgrade_request()
        self.assertEqual(http(self.port, req.replace(b"GET /ws", b"POST /ws"))[0], 400)

    def test_http10_upgrade_is_400(self):
        _, req = upgrade_request()
        self.assertEqual(http(self.port, req.replace(b"HTTP/1.1", b"HTTP/1.0"))[0], 400)

    def test_plain_get_on_ws_is_426_with_version(self):
        st, hdrs, _ = get(self.port, "/ws")
        self.assertEqual(st, 426)
        self.assertEqual(hdrs.get("sec-websocket-version"), "13")

    def test_unknown_path_is_404(self):
        self.assertEqual(get(self.port, "/nope")[0], 404)

    def test_garbage_request_line_is_400(self):
        self.assertEqual(self.req("HELLO\r\n\r\n")[0], 400)

    def test_head_over_8k_is_431(self):
        big = "GET /ws HTTP/1.1\r\nX-Big: " + "a" * 9000 + "\r\n\r\n"
        self.assertEqual(self.req(big)[0], 431)

    def test_healthz_and_metrics(self):
        st, _, body = get(self.port, "/healthz")
        self.assertEqual((st, body), (200, b"ok\n"))
        m = metrics(self.port)
        for name in ("tickwire_connections", "tickwire_connections_accepted_total",
                     "tickwire_heartbeat_timeouts_total", "tickwire_messages_received_total",
                     "tickwire_messages_sent_total", "tickwire_detection_seconds_count"):
            self.assertIn(name, m)
        self.assertIn('tickwire_handshake_failures_total{reason="bad_request"}', m)
        self.assertIn('tickwire_closes_total{code="1000"}', m)

    def test_keepalive_serves_several_requests(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        for _ in range(3):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            st, _, body = twtest.read_response(s)
            self.assertEqual((st, body), (200, b"ok\n"))
        s.close()

    def test_response_survives_client_half_close(self):
        """A client may shut down its sending side right after the request."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        st, _, body = twtest.read_response(s)
        self.assertEqual((st, body), (200, b"ok\n"))
        s.close()

    def test_slowloris_dropped_by_handshake_timeout(self):
        before = metrics(self.port).get('tickwire_handshake_failures_total{reason="timeout"}', 0)
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\n")
        t0 = time.time()
        for _ in range(5):
            time.sleep(0.1)
            try:
                s.sendall(b"X: y\r\n")  # trickle: must not extend the deadline
            except OSError:
                break
        s.settimeout(3)
        try:
            self.assertEqual(s.recv(100), b"")
        except ConnectionResetError:
            pass
        elapsed = time.time() - t0
        self.assertGreaterEqual(elapsed, 0.6)
        self.assertLess(elapsed, 1.5)
        after = metrics(self.port)['tickwire_handshake_failures_total{reason="timeout"}']
        self.assertEqual(after, before + 1)


class Limits(unittest.TestCase):
    def test_max_connections_answers_503_and_keeps_serving(self):
        with Server("--max-connections", "3") as srv:
            held = [WS(srv.port) for _ in range(3)]
            st, _, _ = http(srv.port, upgrade_request()[1])
            self.assertEqual(st, 503)
            self.assertEqual(get(srv.port, "/healthz")[0], 200)  # monitoring still answers
            held[0].close()
            time.sleep(0.2)
            ws = WS(srv.port)  # a slot is free again
            ws.send_text('{"type":"ping","time":1}')
            self.assertEqual(ws.recv_text(), '{"type":"pong","time":1}')
            self.assertGreaterEqual(
                twtest.metrics(srv.port)["tickwire_limit_hits_total"], 1)
            self.assertTrue(any("connection limit" in l for l in srv.lines))
            for w in held[1:] + [ws]:
                w.close()


if __name__ == "__main__":
    unittest.main()
