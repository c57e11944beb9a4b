"""Pub/sub on one server: replies and errors of DESIGN 5, seq order without gaps, data
byte for byte, snapshot, resume with `since` inside and beyond history, epochs (v2),
unsubscribe, idempotent subscribe, the per-connection subscription limit, and a subscribe
racing a publisher (each seq exactly once)."""
import json
import re
import threading
import unittest

from twtest import Server, WS, http, metrics


def publish_http(port, topic, body, extra=""):
    raw = ("POST /publish?topic=%s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s"
           "Content-Type: application/json\r\n"
           "Connection: close\r\n\r\n" % (topic, len(body), extra)).encode() + body
    return http(port, raw)


def no_epoch(reply):
    """A `subscribed` reply without its epoch, after checking the epoch is a 16-hex-digit
    string (DESIGN 5 v2): lets the rest be compared whole."""
    r = dict(reply)
    assert re.fullmatch(r"[0-9a-f]{16}", r.pop("epoch", "")), reply
    return r


class PubSub(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--history", "8", "--max-subscriptions", "3", workers=2)
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def ws(self):
        w = WS(self.port)
        self.addCleanup(w.close)
        return w

    def req(self, w, obj):
        w.send_text(json.dumps(obj))
        return json.loads(w.recv_text())

    def test_subscribe_publish_order_no_gaps(self):
        sub, pub = self.ws(), self.ws()
        self.assertEqual(no_epoch(self.req(sub, {"type": "subscribe", "topic": "ord"})),
                         {"type": "subscribed", "topic": "ord", "seq": 0})
        for i in range(200):
            pub.send_text('{"type":"publish","topic":"ord","data":%d}' % i)
        for i in range(200):
            self.assertEqual(json.loads(pub.recv_text()),
                             {"type": "published", "topic": "ord", "seq": i + 1})
        for i in range(200):
            self.assertEqual(sub.recv_text(),
                             '{"type":"message","topic":"ord","seq":%d,"data":%d}' % (i + 1, i))

    def test_data_verbatim(self):
        sub, pub = self.ws(), self.ws()
        self.req(sub, {"type": "subscribe", "topic": "raw.1"})
        odd = ['{"a" : [1, {"b":null}] ,"c":"\\u00e9\\ud83d\\ude00"}', '1.50e+3', '-0.0E-2',
               '"caf\u00e9 \\"q\\""', '[ ]', 'true', '{"deep":[[[[{"x":[]}]]]]}']
        for d in odd:
            pub.send_text('{"type":"publish","topic":"raw.1","data":%s}' % d)
            pub.recv_text()
        for i, d in enumerate(odd):
            self.assertEqual(sub.recv_text(),
                             '{"type":"message","topic":"raw.1","seq":%d,"data":%s}' % (i + 1, d))
        # Over HTTP: the body is the value (surrounding blanks are not part of it).
        st, _, body = publish_http(self.port, "raw.1", b' {"k": 1.0e-7, "s":"\\u0041"}\n')
        self.assertEqual((st, json.loads(body)), (200, {"seq": len(odd) + 1}))
        self.assertEqual(sub.recv_text(), '{"type":"message","topic":"raw.1","seq":%d,'
                         '"data":{"k": 1.0e-7, "s":"\\u0041"}}' % (len(odd) + 1))

    def test_http_publish_errors(self):
        self.assertEqual(publish_http(self.port, "ok", b"{bad")[0], 400)
        self.assertEqual(publish_http(self.port, "ok", b"")[0], 400)
        self.assertEqual(publish_http(self.port, "bad%20topic", b"1")[0], 400)
        self.assertEqual(publish_http(self.port, "x" * 129, b"1")[0], 400)
        st, _, _ = http(self.port, b"POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                        b"Content-Type: application/json\r\nConnection: close\r\n\r\n1")
        self.assertEqual(st, 400)
        # Not JSON content (a no-CORS form post can send text/plain): 415 (DESIGN 6).
        st, _, _ = http(self.port, b"POST /publish?topic=ok HTTP/1.1\r\nHost: t\r\n"
                        b"Content-Type: text/plain\r\nContent-Length: 1\r\n"
                        b"Connection: close\r\n\r\n1")
        self.assertEqual(st, 415)

    def test_bad_topic(self):
        w = self.ws()
        for t in ["", "a b", "x" * 129, "caf\u00e9"]:
            r = self.req(w, {"type": "subscribe", "topic": t})
            self.assertEqual((r["type"], r["code"]), ("error", "bad_topic"))
        w.send_text('{"type":"subscribe"}')
        self.assertEqual(json.loads(w.recv_text())["code"], "bad_topic")

    def test_snapshot(self):
        pub = self.ws()
        w = self.ws()
        r = self.req(w, {"type": "subscribe", "topic": "snap.empty", "snapshot": True})
        self.assertEqual(no_epoch(r), {"type": "subscribed", "topic": "snap.empty", "seq": 0})
        for i in range(3):
            self.req(pub, {"type": "publish", "topic": "snap", "data": {"v": i}})
        s = self.ws()
        s.send_text('{"type":"subscribe","topic":"snap","snapshot":true}')
        self.assertEqual(s.recv_text(), '{"type":"message","topic":"snap","seq":3,"data":{"v": 2}}')
        self.assertEqual(no_epoch(json.loads(s.recv_text())),
                         {"type": "subscribed", "topic": "snap", "seq": 3})
        self.req(pub, {"type": "publish", "topic": "snap", "data": 9})
        self.assertEqual(json.loads(s.recv_text())["seq"], 4)

    def test_since_inside_and_beyond_history(self):
        pub = self.ws()
        for i in range(20):  # history is 8: seqs 13..20 are kept
            self.req(pub, {"type": "publish", "topic": "hist", "data": i})
        w = self.ws()
        w.send_text('{"type":"subscribe","topic":"hist","since":15}')
        got = [json.loads(w.recv_text()) for _ in range(6)]
        self.assertEqual([m["seq"] for m in got[:5]], [16, 17, 18, 19, 20])
        self.assertEqual(no_epoch(got[5]), {"type": "subscribed", "topic": "hist", "seq": 20,
                                            "recovered": True})
        # Beyond history: what is still there, then recovered false.
        w2 = self.ws()
        w2.send_text('{"type":"subscribe","topic":"hist","since":3}')
        got = [json.loads(w2.recv_text()) for _ in range(9)]
        self.assertEqual([m["seq"] for m in got[:8]], list(range(13, 21)))
        self.assertEqual(got[8]["recovered"], False)
        # Up to date, and "from the future" (a restarted server): nothing replayed.
        self.assertEqual(no_epoch(self.req(self.ws(),
                                           {"type": "subscribe", "topic": "hist", "since": 20})),
                         {"type": "subscribed", "topic": "hist", "seq": 20, "recovered": True})
        self.assertEqual(no_epoch(self.req(self.ws(),
                                           {"type": "subscribe", "topic": "hist", "since": 99})),
                         {"type": "subscribed", "topic": "hist", "seq": 20, "recovered": False})
        # Live messages follow the replay without a gap or a repeat.
        self.req(pub, {"type": "publish", "topic": "hist", "data": "live"})
        self.assertEqual(json.loads(w.recv_text())["seq"], 21)
        self.assertEqual(json.loads(w2.recv_text())["seq"], 21)

    def test_epoch_names_the_incarnation(self):
        """A seq means something only with its epoch: the same topic keeps its epoch, a
        `since` with that epoch resumes, one with another epoch is not recovered and gets
        no replay."""
        pub = self.ws()
        for i in range(4):
            self.req(pub, {"type": "publish", "topic": "ep", "data": i})
        first = self.req(self.ws(), {"type": "subscribe", "topic": "ep"})
        epoch = no_epoch(first) and first["epoch"]
        w = self.ws()
        w.send_text(json.dumps({"type": "subscribe", "topic": "ep", "since": 2, "epoch": epoch}))
        got = [json.loads(w.recv_text()) for _ in range(3)]
        self.assertEqual([m["seq"] for m in got[:2]], [3, 4])
        self.assertEqual((got[2]["epoch"], got[2]["recovered"]), (epoch, True))
        other = "0" * 16 if epoch != "0" * 16 else "1" * 16
        r = self.req(self.ws(), {"type": "subscribe", "topic": "ep", "since": 2,
                                 "epoch": other})
        self.assertEqual((r["type"], r["epoch"], r["recovered"]), ("subscribed", epoch, False))
        bad = self.req(self.ws(), {"type": "subscribe", "topic": "ep", "since": 2,
                                   "epoch": "not an epoch!"})
        self.assertEqual((bad["type"], bad["code"]), ("error", "bad_json"))

    def test_unsubscribe(self):
        sub, pub = self.ws(), self.ws()
        self.req(sub, {"type": "subscribe", "topic": "uns"})
        self.req(pub, {"type": "publish", "topic": "uns", "data": 1})
        self.assertEqual(json.loads(sub.recv_text())["seq"], 1)
        self.assertEqual(self.req(sub, {"type": "unsubscribe", "topic": "uns"}),
                         {"type": "unsubscribed", "topic": "uns"})
        self.req(pub, {"type": "publish", "topic": "uns", "data": 2})
        # Nothing more for "uns": the next frame is the pong.
        self.assertEqual(self.req(sub, {"type": "ping", "time": 7}), {"type": "pong", "time": 7})
        # Unsubscribing from what one never joined is answered the same way.
        self.assertEqual(self.req(sub, {"type": "unsubscribe", "topic": "never"}),
                         {"type": "unsubscribed", "topic": "never"})

    def test_subscribe_twice_is_idempotent(self):
        sub, pub = self.ws(), self.ws()
        self.req(sub, {"type": "subscribe", "topic": "twice"})
        self.assertEqual(no_epoch(self.req(sub, {"type": "subscribe", "topic": "twice"})),
                         {"type": "subscribed", "topic": "twice", "seq": 0})
        self.req(pub, {"type": "publish", "topic": "twice", "data": 1})
        self.req(pub, {"type": "publish", "topic": "twice", "data": 2})
        self.assertEqual(json.loads(sub.recv_text())["seq"], 1)
        self.assertEqual(json.loads(sub.recv_text())["seq"], 2)
        self.assertEqual(self.req(sub, {"type": "ping", "time": 1})["type"], "pong")

    def test_too_many_subscriptions(self):
        w = self.ws()
        for t in ["l1", "l2", "l3"]:
            self.assertEqual(self.req(w, {"type": "subscribe", "topic": t})["type"], "subscribed")
        r = self.req(w, {"type": "subscribe", "topic": "l4"})
        self.assertEqual((r["type"], r["code"]), ("error", "too_many_subscriptions"))
        # Re-subscribing to a joined topic is not a new subscription.
        self.assertEqual(self.req(w, {"type": "subscribe", "topic": "l2"})["type"], "subscribed")
        self.req(w, {"type": "unsubscribe", "topic": "l1"})
        self.assertEqual(self.req(w, {"type": "subscribe", "topic": "l4"})["type"], "subscribed")

    def test_subscribe_races_publisher(self):
        """Subscribers join while two publishers (one per worker, likely) publish: each
        sees subscribed(S), then S+1, S+2, ... up to the end, nothing lost or repeated."""
        total = 3000
        pubs = [self.ws(), self.ws()]
        done = threading.Event()

        def run(p, n):
            for i in range(n):
                p.send_text('{"type":"publish","topic":"race","data":%d}' % i)
            for i in range(n):
                p.recv_text(timeout=20)

        threads = [threading.Thread(target=run, args=(p, total // 2)) for p in pubs]
        for t in threads:
            t.start()
        subs = []
        for k in range(30):
            w = self.ws()
            if k % 3 == 0:
                w.send_text('{"type":"subscribe","topic":"race","since":0}')
            else:
                w.send_text('{"type":"subscribe","topic":"race"}')
            subs.append(w)
        for t in threads:
            t.join()
        done.set()
        for w in subs:
            seqs, start = [], None
            while True:
                m = json.loads(w.recv_text(timeout=20))
                if m["type"] == "subscribed":
                    start = m["seq"]
                    if m.get("recovered") is not None:
                        # since:0 with history 8: the replay came first.
                        self.assertEqual(seqs, list(range(start - len(seqs) + 1, start + 1)))
                        seqs = []
                    if start == total:
                        break  # joined after the last publish
                    continue
                seqs.append(m["seq"])
                if m["seq"] == total and start is not None:
                    break
            self.assertIsNotNone(start)
            self.assertEqual(seqs, list(range(start + 1, total + 1)))
        m = metrics(self.port)
        self.assertGreaterEqual(m["tickwire_messages_published_total"], total)


if __name__ == "__main__":
    unittest.main()
