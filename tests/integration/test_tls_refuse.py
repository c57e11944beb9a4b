"""What the TLS listener refuses, and that refusing one client costs no other: TLS 1.1,
NULL/anon-only cipher offers, plain HTTP bytes, garbage, a client that stalls halfway
through its ClientHello (dropped by --handshake-timeout). Each failed handshake closes
only its own connection and is counted as reason="tls" (a stall as "timeout")."""
import json
import socket
import ssl
import subprocess
import time
import unittest

import twtest
from twtest import WS, metrics
from tlstest import TLSServer, tls_failures


class TLSRefuse(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TLSServer("--handshake-timeout", "500ms")
        # A healthy session that must survive every refusal below.
        cls.bystander = WS(cls.srv.tls_port, wrap=cls.srv.wrap())

    @classmethod
    def tearDownClass(cls):
        w = cls.bystander
        w.send_text('{"type":"ping","time":99}')
        assert json.loads(w.recv_text()) == {"type": "pong", "time": 99}
        w.close()
        cls.srv.stop_checked()

    def assert_counted(self, before, n=1):
        self.assertTrue(twtest.wait_for(lambda: tls_failures(self.srv.port) >= before + n, 5),
                        "tls failures %r, expected %r" % (tls_failures(self.srv.port), before + n))

    def test_tls11_refused(self):
        before = tls_failures(self.srv.port)
        ctx = self.srv.context(minimum=ssl.TLSVersion.TLSv1_1, maximum=ssl.TLSVersion.TLSv1_1,
                               ciphers="ALL:@SECLEVEL=0")
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            self.srv.connect(ctx)
        self.assert_counted(before)

    def test_null_and_anon_suites_refused(self):
        for ciphers in ("aNULL:@SECLEVEL=0", "eNULL:@SECLEVEL=0"):
            before = tls_failures(self.srv.port)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(ciphers)
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                self.srv.connect(ctx)
            self.assert_counted(before)

    def test_openssl_refused_suites(self):
        for args in (["-tls1_2", "-cipher", "NULL:@SECLEVEL=0"],
                     ["-tls1_2", "-cipher", "ADH:AECDH:@SECLEVEL=0"],
                     ["-tls1_2", "-cipher", "AES128-SHA:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"],
                     ["-tls1_2", "-cipher", "AES128-GCM-SHA256"]):  # static RSA
            r = subprocess.run(["openssl", "s_client", "-connect",
                                "127.0.0.1:%d" % self.srv.tls_port, *args],
                               input=b"", capture_output=True, timeout=20)
            self.assertIn(b"Cipher is (NONE)", r.stdout, args)

    def test_plain_http_on_tls_port(self):
        before = tls_failures(self.srv.port)
        s = socket.create_connection(("127.0.0.1", self.srv.tls_port), timeout=5)
        _, req = twtest.upgrade_request()
        s.sendall(req)
        data = b""
        while True:  # at most an alert, then the end
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        self.assertNotIn(b"HTTP/1.1", data)
        s.close()
        self.assert_counted(before)

    def test_garbage_client_hello(self):
        before = tls_failures(self.srv.port)
        s = socket.create_connection(("127.0.0.1", self.srv.tls_port), timeout=5)
        # A handshake record header claiming a ClientHello, then nonsense.
        s.sendall(b"\x16\x03\x01\x00\x40" + b"\x01\x00\x00\x3c" + b"\xff" * 60)
        self.assertTrue(WSLike(s).wait_eof(5))
        s.close()
        self.assert_counted(before)

    def test_stalled_client_hello_times_out(self):
        m0 = metrics(self.srv.port)
        # Half of a real ClientHello, then silence.
        mem_in, mem_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.srv.context().wrap_bio(mem_in, mem_out, server_hostname="localhost")
        with self.assertRaises(ssl.SSLWantReadError):
            obj.do_handshake()
        hello = mem_out.read()
        s = socket.create_connection(("127.0.0.1", self.srv.tls_port), timeout=5)
        s.sendall(hello[:len(hello) // 2])
        t0 = time.time()
        self.assertTrue(WSLike(s).wait_eof(3))
        self.assertGreaterEqual(time.time() - t0, 0.4)
        s.close()
        m = metrics(self.srv.port)
        self.assertEqual(m['tickwire_handshake_failures_total{reason="timeout"}'],
                         m0['tickwire_handshake_failures_total{reason="timeout"}'] + 1)
        self.assertEqual(m['tickwire_handshake_failures_total{reason="tls"}'],
                         m0['tickwire_handshake_failures_total{reason="tls"}'])

    def test_client_rejecting_our_certificate(self):
        # A client that does not trust us sends a fatal alert mid-handshake.
        before = tls_failures(self.srv.port)
        ctx = ssl.create_default_context()  # system CAs only
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.srv.connect(ctx)
        self.assert_counted(before)


class WSLike(WS):
    """wait_eof() on an arbitrary socket."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""


if __name__ == "__main__":
    unittest.main()
