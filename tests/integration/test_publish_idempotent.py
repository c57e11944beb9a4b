"""Idempotent publish (DESIGN 5 v2): a publish with an `id` that repeats one the topic
still remembers — while the original is in its history, or within 5 minutes — is answered
with the original seq and "duplicate":true, echoes the id, and is not published again
(subscribers see it once). Over HTTP the id goes in ?id=. A bad id is bad_json / 400."""
import json
import unittest

from twtest import Server, WS, metrics, publish_http


def req(w, obj):
    w.send_text(json.dumps(obj))
    return json.loads(w.recv_text())


class Idempotent(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--history", "4", workers=2)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def test_repeat_is_answered_once(self):
        sub, pub = WS(self.srv.port), WS(self.srv.port)
        self.addCleanup(sub.close)
        self.addCleanup(pub.close)
        req(sub, {"type": "subscribe", "topic": "idem"})
        first = req(pub, {"type": "publish", "topic": "idem", "data": 1, "id": "a-1"})
        self.assertEqual(first, {"type": "published", "topic": "idem", "seq": 1, "id": "a-1"})
        again = req(pub, {"type": "publish", "topic": "idem", "data": 1, "id": "a-1"})
        self.assertEqual(again, {"type": "published", "topic": "idem", "seq": 1, "id": "a-1",
                                 "duplicate": True})
        other = req(pub, {"type": "publish", "topic": "idem", "data": 2, "id": "a-2"})
        self.assertEqual(other["seq"], 2)
        self.assertNotIn("duplicate", other)
        # The subscriber got each publish once.
        self.assertEqual([json.loads(sub.recv_text())["seq"] for _ in range(2)], [1, 2])
        # The same id on another topic is another publish.
        self.assertEqual(req(pub, {"type": "publish", "topic": "idem2", "data": 1,
                                   "id": "a-1"})["seq"], 1)

    def test_remembered_past_the_history(self):
        pub = WS(self.srv.port)
        self.addCleanup(pub.close)
        req(pub, {"type": "publish", "topic": "old", "data": 0, "id": "keep"})
        for i in range(10):  # history is 4: "keep" leaves it, but is young
            req(pub, {"type": "publish", "topic": "old", "data": i})
        r = req(pub, {"type": "publish", "topic": "old", "data": 0, "id": "keep"})
        self.assertEqual((r["seq"], r.get("duplicate")), (1, True))

    def test_http_id_and_bad_ids(self):
        st, _, body = publish_http(self.srv.port, "h&id=x.1", b'{"v":1}')
        self.assertEqual((st, json.loads(body)), (200, {"seq": 1}))
        st, _, body = publish_http(self.srv.port, "h&id=x.1", b'{"v":1}')
        self.assertEqual((st, json.loads(body)), (200, {"seq": 1, "duplicate": True}))
        st, _, _ = publish_http(self.srv.port, "h&id=" + "x" * 65, b"1")
        self.assertEqual(st, 400)
        pub = WS(self.srv.port)
        self.addCleanup(pub.close)
        r = req(pub, {"type": "publish", "topic": "h", "data": 1, "id": "bad id!"})
        self.assertEqual((r["type"], r["code"]), ("error", "bad_json"))
        self.assertGreaterEqual(metrics(self.srv.port)["tickwire_publish_duplicates_total"], 1)


if __name__ == "__main__":
    unittest.main()
