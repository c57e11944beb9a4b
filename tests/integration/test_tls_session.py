"""wss:// end to end: TLS handshake through the ring, then the same WebSocket session as
on a plain connection (app ping/pong, protocol Ping/Pong, close handshake, drain, the
connection limit), the negotiated version and cipher, plain and TLS side by side, and
an off-the-shelf client (python3-websockets) over wss."""
import asyncio
import json
import signal
import ssl
import struct
import subprocess
import time
import unittest

import twtest
from twtest import WS, metrics
from tlstest import TLSServer


class TLSSession(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TLSServer()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def tls_ws(self, **kw):
        return WS(self.srv.tls_port, wrap=self.srv.wrap(**kw))

    def test_listeners_printed(self):
        self.assertEqual(len(self.srv.ports), 2)
        self.assertEqual(self.srv.tls_ports, [self.srv.ports[1]])
        self.assertNotEqual(self.srv.port, self.srv.tls_port)

    def test_app_ping_protocol_ping_and_close(self):
        w = self.tls_ws()
        w.send_text('{"type":"ping","time":12345}')
        self.assertEqual(json.loads(w.recv_text()), {"type": "pong", "time": 12345})
        w.send_frame(0x9, b"hello")
        fin, op, payload = w.recv_frame()
        self.assertEqual((op, payload), (0xA, b"hello"))
        w.send_frame(0x8, struct.pack("!H", 1000) + b"bye")
        w.expect_close(1000)
        self.assertTrue(w.wait_eof())
        w.close()

    def test_tls13_prefers_chacha20(self):
        s = self.srv.connect()
        self.assertEqual(s.version(), "TLSv1.3")
        # Python offers AES-256-GCM first: the server's order wins.
        self.assertEqual(s.cipher()[0], "TLS_CHACHA20_POLY1305_SHA256")
        s.close()

    def s_client(self, *args):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.srv.tls_port,
                            "-CAfile", self.srv.cert, *args], input=b"", capture_output=True,
                           timeout=20)
        return r.stdout.decode(errors="replace")

    def test_tls13_aes_gcm_when_chacha_not_offered(self):
        out = self.s_client("-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256")
        self.assertIn("Cipher is TLS_AES_128_GCM_SHA256", out)  # ours: 128 before 256
        out = self.s_client("-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256")
        self.assertIn("Cipher is (NONE)", out)  # wolfSSL has CCM; we do not offer it

    def test_tls12_ecdhe_chacha20(self):
        ctx = self.srv.context(maximum=ssl.TLSVersion.TLSv1_2)
        s = self.srv.connect(ctx)
        self.assertEqual(s.version(), "TLSv1.2")
        self.assertEqual(s.cipher()[0], "ECDHE-ECDSA-CHACHA20-POLY1305")
        s.close()
        ctx = self.srv.context(maximum=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
        s = self.srv.connect(ctx)
        self.assertEqual(s.cipher()[0], "ECDHE-ECDSA-AES256-GCM-SHA384")
        s.close()

    def test_http_endpoints_over_tls(self):
        s = self.srv.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        status, _, body = twtest.read_response(s)
        self.assertEqual((status, body), (200, b"ok\n"))
        # The server closes with close_notify: a clean end of stream, not a ragged one.
        self.assertEqual(s.recv(100), b"")
        s.close()

    def test_plain_beside_tls(self):
        plain = WS(self.srv.port)
        tls = self.tls_ws()
        for w in (plain, tls):
            w.send_text('{"type":"ping","time":1}')
            self.assertEqual(json.loads(w.recv_text()), {"type": "pong", "time": 1})
        # A TLS ClientHello on the plain port is just a bad HTTP request there.
        with self.assertRaises(ssl.SSLError):
            self.srv.wrap()(twtest.socket.create_connection(("127.0.0.1", self.srv.port), 5))
        plain.close()
        tls.close()

    def test_large_messages_both_ways(self):
        w = self.tls_ws()
        t = "x" * 100000  # several TLS records each way
        w.send_text('{"type":"ping","time":"%s"}' % t)
        self.assertEqual(json.loads(w.recv_text(timeout=10))["time"], t)
        w.close()

    def test_websockets_library_over_wss(self):
        import websockets

        async def run():
            uri = "wss://localhost:%d/ws" % self.srv.tls_port
            async with websockets.connect(uri, ssl=self.srv.context()) as ws:
                await ws.send('{"type":"ping","time":7}')
                self.assertEqual(json.loads(await ws.recv()), {"type": "pong", "time": 7})
                await ws.ping(b"lib")  # resolves when our Pong arrives
            self.assertEqual(ws.close_code, 1000)

        asyncio.run(asyncio.wait_for(run(), 20))


class TLSLimitsAndDrain(unittest.TestCase):
    def test_limit_answers_503_over_tls(self):
        with TLSServer("--max-connections", "1", workers=1) as srv:
            first = WS(srv.tls_port, wrap=srv.wrap())
            with self.assertRaises(ConnectionError) as cm:
                WS(srv.tls_port, wrap=srv.wrap())
            self.assertIn("503", str(cm.exception))
            first.close()

    def test_drain_sends_1001_over_tls(self):
        srv = TLSServer("--drain-timeout", "3s")
        clients = [WS(srv.tls_port, wrap=srv.wrap()) for _ in range(4)]
        srv.proc.send_signal(signal.SIGTERM)
        for w in clients:
            reason = w.expect_close(1001)
            self.assertIn(b"retry_ms", reason)
            w.send_frame(0x8, struct.pack("!H", 1001))
        t0 = time.time()
        srv.proc.wait(10)
        self.assertLess(time.time() - t0, 3)  # everyone answered: no wait for the deadline
        srv.stop_checked()


if __name__ == "__main__":
    unittest.main()
