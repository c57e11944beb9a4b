"""JWT permissions and expiry on open sessions (DESIGN 5, issue 9 items 9 and 10).

Claims "subs" and "pubs" list the topic patterns a session may subscribe and publish to
(AAPL, fx.*, *); without "subs" a session may subscribe to nothing, without "pubs" (and
without the publish token) publish nothing. --jwt-audience/--jwt-issuer are checked.
When "exp" passes on an open connection the server sends token_expired and closes with
4001 unless a {"type":"refresh"} arrives within --token-grace; a refresh must be for the
same subject, answers `refreshed` with the new exp, and its permissions apply at once."""
import json
import struct
import time
import unittest

from test_auth import jwt
from twtest import Server, WS, http, upgrade_request

SECRET = "s3cret"


def ws(port, claims):
    return WS(port, "/ws?token=" + jwt(claims, secret=SECRET.encode()), timeout=15)


def req(w, obj):
    w.send_text(json.dumps(obj))
    return json.loads(w.recv_text(timeout=15))


class Grants(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--jwt-secret", SECRET, "--token-grace", "1s", workers=2)
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def test_subs_patterns(self):
        w = ws(self.port, {"sub": "u", "subs": ["AAPL", "fx.*"]})
        self.addCleanup(w.close)
        self.assertEqual(req(w, {"type": "subscribe", "topic": "AAPL"})["type"], "subscribed")
        self.assertEqual(req(w, {"type": "subscribe", "topic": "fx.EURUSD"})["type"],
                         "subscribed")
        r = req(w, {"type": "subscribe", "topic": "MSFT"})
        self.assertEqual((r["type"], r["code"]), ("error", "forbidden"))
        r = req(w, {"type": "subscribe", "topic": "fxEURUSD"})
        self.assertEqual((r["type"], r["code"]), ("error", "forbidden"))

    def test_no_subs_claim_subscribes_to_nothing(self):
        w = ws(self.port, {"sub": "u"})
        self.addCleanup(w.close)
        r = req(w, {"type": "subscribe", "topic": "AAPL"})
        self.assertEqual((r["type"], r["code"]), ("error", "forbidden"))

    def test_pubs_patterns(self):
        w = ws(self.port, {"sub": "p", "pubs": ["news.*"], "subs": ["*"]})
        self.addCleanup(w.close)
        self.assertEqual(req(w, {"type": "publish", "topic": "news.a", "data": 1})["type"],
                         "published")
        r = req(w, {"type": "publish", "topic": "AAPL", "data": 1})
        self.assertEqual((r["type"], r["code"]), ("error", "forbidden"))
        n = ws(self.port, {"sub": "q", "subs": ["*"]})
        self.addCleanup(n.close)
        r = req(n, {"type": "publish", "topic": "news.a", "data": 1})
        self.assertEqual((r["type"], r["code"]), ("error", "forbidden"))

    def test_expiry_without_refresh_closes_4001(self):
        w = ws(self.port, {"sub": "e", "subs": ["*"], "exp": int(time.time()) + 1})
        self.addCleanup(w.close)
        t0 = time.time()
        r = json.loads(w.recv_text(timeout=15))
        self.assertEqual((r["type"], r["code"]), ("error", "token_expired"))
        w.expect_close(4001, timeout=5)
        # exp + the 5 s leeway for clock skew, then the 1 s grace.
        self.assertLess(time.time() - t0, 12)

    def test_refresh_in_grace_keeps_the_session(self):
        w = ws(self.port, {"sub": "r", "subs": ["a", "b"], "exp": int(time.time()) + 1})
        self.addCleanup(w.close)
        req(w, {"type": "subscribe", "topic": "a"})
        req(w, {"type": "subscribe", "topic": "b"})
        r = json.loads(w.recv_text(timeout=15))
        self.assertEqual(r["code"], "token_expired")
        exp = int(time.time()) + 60
        # Another subject's token is refused; a bad token too; the session goes on.
        r = req(w, {"type": "refresh", "token": jwt({"sub": "x", "exp": exp}, SECRET.encode())})
        self.assertEqual((r["type"], r["code"]), ("error", "bad_token"))
        r = req(w, {"type": "refresh", "token": "not.a.token"})
        self.assertEqual((r["type"], r["code"]), ("error", "bad_token"))
        r = req(w, {"type": "refresh",
                    "token": jwt({"sub": "r", "subs": ["a"], "exp": exp}, SECRET.encode())})
        self.assertEqual(r, {"type": "refreshed", "exp": exp})
        # The new permissions apply at once: "b" is no longer allowed.
        r = json.loads(w.recv_text())
        self.assertEqual((r["type"], r["code"], r["topic"]), ("error", "forbidden", "b"))
        time.sleep(1.5)  # past the old grace: still open
        self.assertEqual(req(w, {"type": "ping", "time": 5}), {"type": "pong", "time": 5})
        r = req(w, {"type": "subscribe", "topic": "b"})
        self.assertEqual(r["code"], "forbidden")


class Claims(unittest.TestCase):
    def test_audience_and_issuer(self):
        with Server("--jwt-secret", SECRET, "--jwt-audience", "svc", "--jwt-issuer", "idp",
                    workers=1) as srv:
            def status(claims):
                path = "/ws?token=" + jwt(claims, secret=SECRET.encode())
                return http(srv.port, upgrade_request(path)[1])[0]
            self.assertEqual(status({"aud": "svc", "iss": "idp"}), 101)
            self.assertEqual(status({"aud": ["x", "svc"], "iss": "idp"}), 101)
            self.assertEqual(status({"aud": "other", "iss": "idp"}), 401)
            self.assertEqual(status({"aud": "svc", "iss": "evil"}), 401)
            self.assertEqual(status({"iss": "idp"}), 401)


if __name__ == "__main__":
    unittest.main()
