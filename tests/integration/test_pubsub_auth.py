"""Publishing rights: with --publish-token, HTTP publish needs the token (?token= or
Bearer) and answers 401 without it; a WebSocket client without it gets `forbidden`, one
that presented it on the upgrade (either way) may publish. Without a token configured,
anyone may."""
import json
import unittest

from twtest import Server, WS, http


def post(port, path, body, extra=""):
    return http(port, ("POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s"
                       "Content-Type: application/json\r\nConnection: close\r\n\r\n"
                       % (path, len(body), extra)).encode() + body)


class PublishAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--publish-token", "s3cret")
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def ws(self, **kw):
        w = WS(self.port, **kw)
        self.addCleanup(w.close)
        return w

    def test_http(self):
        self.assertEqual(post(self.port, "/publish?topic=a", b"1")[0], 401)
        self.assertEqual(post(self.port, "/publish?topic=a&token=nope", b"1")[0], 401)
        st, _, body = post(self.port, "/publish?topic=a&token=s3cret", b"1")
        self.assertEqual(st, 200)
        st2, _, body2 = post(self.port, "/publish?topic=a", b"2", "Authorization: Bearer s3cret\r\n")
        self.assertEqual(st2, 200)
        self.assertEqual(json.loads(body2)["seq"], json.loads(body)["seq"] + 1)

    def test_websocket(self):
        sub = self.ws()
        sub.send_text('{"type":"subscribe","topic":"b"}')
        sub.recv_text()
        anon = self.ws()
        anon.send_text('{"type":"publish","topic":"b","data":1}')
        r = json.loads(anon.recv_text())
        self.assertEqual((r["type"], r["code"]), ("error", "forbidden"))
        q = self.ws(path="/ws?token=s3cret")
        q.send_text('{"type":"publish","topic":"b","data":2}')
        self.assertEqual(json.loads(q.recv_text()), {"type": "published", "topic": "b", "seq": 1})
        h = self.ws(extra="Authorization: Bearer s3cret\r\n")
        h.send_text('{"type":"publish","topic":"b","data":3}')
        self.assertEqual(json.loads(h.recv_text())["seq"], 2)
        self.assertEqual(sub.recv_text(), '{"type":"message","topic":"b","seq":1,"data":2}')
        self.assertEqual(sub.recv_text(), '{"type":"message","topic":"b","seq":2,"data":3}')


class PublishOpen(unittest.TestCase):
    def test_anyone_publishes_without_token(self):
        with Server() as srv:
            w = WS(srv.port)
            w.send_text('{"type":"publish","topic":"c","data":null}')
            self.assertEqual(json.loads(w.recv_text())["type"], "published")
            self.assertEqual(post(srv.port, "/publish?topic=c", b"null")[0], 200)
            w.close()


if __name__ == "__main__":
    unittest.main()
