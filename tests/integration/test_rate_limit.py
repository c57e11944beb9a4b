"""--max-message-rate N/s (DESIGN 7, issue 9 item 8): a connection may send N messages a
second with a burst of N; messages over it are answered `rate_limited` and dropped (a
Ping over it gets no Pong); a client that keeps going a second's worth past the burst is
closed with 1008. A client under the rate is never limited."""
import json
import time
import unittest

from twtest import Server, WS, frame, metrics


def ping(i):
    return frame(0x1, ('{"type":"ping","time":%d}' % i).encode())


class RateLimit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--max-message-rate", "20/s", workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def replies(self, w, n):
        return [json.loads(w.recv_text()) for _ in range(n)]

    def test_burst_then_refused_then_refilled(self):
        w = WS(self.srv.port)
        self.addCleanup(w.close)
        w.send(b"".join(ping(i) for i in range(20)))  # the burst: all answered
        got = self.replies(w, 20)
        self.assertEqual([r["type"] for r in got], ["pong"] * 20)
        w.send(b"".join(ping(100 + i) for i in range(5)))  # over it: refused
        got = self.replies(w, 5)
        self.assertTrue(all(r == {"type": "error", "code": "rate_limited",
                                  "message": r.get("message")} for r in got), got)
        time.sleep(1.2)  # a second later the bucket has refilled
        w.send(ping(7))
        self.assertEqual(self.replies(w, 1), [{"type": "pong", "time": 7}])
        self.assertGreaterEqual(metrics(self.srv.port)["tickwire_rate_limited_total"], 5)

    def test_steady_client_under_the_rate_is_never_limited(self):
        w = WS(self.srv.port)
        self.addCleanup(w.close)
        for i in range(30):  # 15/s for 2 s
            w.send(ping(i))
            self.assertEqual(self.replies(w, 1), [{"type": "pong", "time": i}])
            time.sleep(1 / 15)

    def test_protocol_pings_count_too(self):
        w = WS(self.srv.port)
        self.addCleanup(w.close)
        w.send(b"".join(frame(0x9, b"p%d" % i) for i in range(25)))
        pongs = 0
        w.send(ping(1))  # marks the end: refused too, so wait for its error
        while True:
            fin, op, payload = w.recv_frame()
            if op == 0xA:
                pongs += 1
            elif op == 0x1:
                self.assertEqual(json.loads(payload)["code"], "rate_limited")
                break
        self.assertEqual(pongs, 20)

    def test_flood_is_closed_1008(self):
        w = WS(self.srv.port)
        self.addCleanup(w.close)
        w.send(b"".join(ping(i) for i in range(20 + 20 + 5)))
        w.expect_close(1008)
        self.assertTrue(w.wait_eof())


if __name__ == "__main__":
    unittest.main()
