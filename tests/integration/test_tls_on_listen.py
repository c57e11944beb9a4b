"""--tls-cert/--tls-key without --tls-listen make the --listen addresses serve TLS (DESIGN
7, issue 9 item 12): before, the certificate was loaded and the port served plaintext, so
a user who asked for TLS silently got none."""
import json
import socket
import tempfile
import unittest

import twtest
from tlstest import client_context, make_cert
from twtest import WS


class TLSOnListen(unittest.TestCase):
    def test_listen_serves_tls_when_only_a_certificate_is_given(self):
        with tempfile.TemporaryDirectory() as d:
            cert, key = make_cert(d)
            with twtest.Server("--tls-cert", cert, "--tls-key", key, workers=1) as srv:
                self.assertEqual(srv.tls_ports, [srv.port], srv.lines)
                ctx = client_context(cert)
                w = WS(srv.port,
                       wrap=lambda s: ctx.wrap_socket(s, server_hostname="localhost"))
                w.send_text('{"type":"ping","time":3}')
                self.assertEqual(json.loads(w.recv_text()), {"type": "pong", "time": 3})
                w.close()
                # Plaintext gets no HTTP answer on that port.
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                try:
                    reply = s.recv(100)
                except ConnectionResetError:
                    reply = b""
                s.close()
                self.assertFalse(reply.startswith(b"HTTP/1.1 200"), reply)


if __name__ == "__main__":
    unittest.main()
