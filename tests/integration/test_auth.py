"""--jwt-secret: a WebSocket session needs a valid HS256 token (?token= or Bearer)."""
import base64
import hashlib
import hmac
import json
import time
import unittest

from twtest import Server, WS, http, upgrade_request, metrics

SECRET = b"s3cret"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, secret=SECRET, alg="HS256"):
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--jwt-secret", SECRET.decode())

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def status(self, path="/ws", extra=""):
        return http(self.srv.port, upgrade_request(path, extra=extra)[1])[0]

    def test_valid_token_in_query(self):
        ws = WS(self.srv.port, "/ws?token=" + jwt({"sub": "a", "exp": int(time.time()) + 60}))
        ws.send_text('{"type":"ping","time":1}')
        self.assertEqual(ws.recv_text(), '{"type":"pong","time":1}')
        ws.close()

    def test_valid_bearer(self):
        self.assertEqual(self.status(extra="Authorization: Bearer %s\r\n" % jwt({"sub": "b"})), 101)

    def test_refusals_are_401_and_counted(self):
        before = metrics(self.srv.port)['tickwire_handshake_failures_total{reason="auth"}']
        bad = [
            "/ws",
            "/ws?token=" + jwt({"sub": "a"}, secret=b"wrong"),
            "/ws?token=" + jwt({"exp": int(time.time()) - 60}),
            "/ws?token=" + jwt({"sub": "a"}, alg="none"),
            "/ws?token=garbage",
        ]
        for path in bad:
            self.assertEqual(self.status(path), 401, path)
        after = metrics(self.srv.port)['tickwire_handshake_failures_total{reason="auth"}']
        self.assertEqual(after, before + len(bad))

    def test_monitoring_needs_no_token(self):
        self.assertEqual(http(self.srv.port, b"GET /healthz HTTP/1.1\r\n\r\n")[0], 200)


if __name__ == "__main__":
    unittest.main()
