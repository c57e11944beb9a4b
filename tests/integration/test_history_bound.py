"""History has a server-wide bound (DESIGN 7, issue 9 item 5): --max-history-bytes (default
256 MiB); the oldest messages of the largest histories are dropped first, and a `since`
that reaches into dropped messages answers `"recovered":false`. Before the fix history was
bounded only per topic (--history messages), so 3 topics x 1,100 publishes of 256 KiB took
the server to ~800 MiB in seconds (the worst case is topics x --history x --max-message).

Flood: 3 topics x 1,100 POST /publish of 256 KiB each (825 MiB published), after a small
topic got 10 messages of 1 KB.
- --max-history-bytes 32MiB: RSS grows by less than 96 MiB (32 MiB of history plus slack
  for allocator caches, the receive buffers and one request body in flight); `since:0` on
  a flooded topic answers `"recovered":false`; the small topic keeps its whole history
  (`since:0`: seqs 1..10, `"recovered":true`), as only the largest histories are trimmed.
- default flags: RSS grows by less than 256 + 64 MiB, and the small topic is kept.
RSS is not asserted under sanitizers (TICKWIRE_SANITIZED=1: quarantine keeps freed memory)."""
import json
import unittest

import twtest
from twtest import Server, WS, HttpConn

KiB, MiB = 1024, 1024 * 1024
BIG = b'"' + b"h" * (256 * KiB - 2) + b'"'  # a 256 KiB JSON string
TOPICS = ("flood.a", "flood.b", "flood.c")
PER_TOPIC = 1100
SLACK_MIB = 64


def post(conn, topic, body):
    st, _, reply = conn.request("POST", "/publish?topic=%s" % topic, body,
                                "Content-Type: application/json\r\n")
    assert st == 200, (topic, st, reply)
    return json.loads(reply)["seq"]


def since0(port, topic):
    """Subscribes with since:0: (seqs replayed before `subscribed`, the `subscribed`)."""
    w = WS(port, timeout=30)
    try:
        w.send_text('{"type":"subscribe","topic":"%s","since":0}' % topic)
        seqs = []
        while True:
            m = json.loads(w.recv_text(timeout=30))
            if m["type"] == "message":
                seqs.append(m["seq"])
            else:
                assert m["type"] == "subscribed", m
                return seqs, m
    finally:
        w.close()


class HistoryBound(unittest.TestCase):
    def flood(self, srv):
        """Small topic first, then the flood; returns the RSS growth in MiB."""
        conn = HttpConn(srv.port, timeout=30)
        self.addCleanup(conn.close)
        for i in range(10):
            self.assertEqual(post(conn, "small.kept", b'"%s"' % (b"s" * 1000)), i + 1)
        rss0 = srv.rss_kib()
        for i in range(PER_TOPIC):
            for t in TOPICS:
                self.assertEqual(post(conn, t, BIG), i + 1)
        return (srv.rss_kib() - rss0) / 1024

    def check_small_topic_kept(self, srv):
        seqs, sub = since0(srv.port, "small.kept")
        self.assertEqual(seqs, list(range(1, 11)), "the small topic lost history: %r" % sub)
        self.assertEqual((sub["seq"], sub.get("recovered")), (10, True), sub)

    def test_max_history_bytes_32mib(self):
        with Server("--max-history-bytes", "32MiB", "--max-message", "1MiB", workers=2) as srv:
            grown = self.flood(srv)
            if not twtest.SANITIZED:
                self.assertLess(grown, 32 + SLACK_MIB,
                                "RSS grew %.0f MiB for 3 x %d x 256 KiB published with "
                                "--max-history-bytes 32MiB" % (grown, PER_TOPIC))
            seqs, sub = since0(srv.port, TOPICS[0])
            self.assertIs(sub.get("recovered"), False, sub)
            self.assertEqual(seqs, sorted(set(seqs)))
            self.assertLess(len(seqs) * 256 * KiB, 32 * MiB, "more replayed than the bound")
            self.check_small_topic_kept(srv)

    def test_default_bound_256mib(self):
        with Server("--max-message", "1MiB", workers=2) as srv:
            grown = self.flood(srv)
            if not twtest.SANITIZED:
                self.assertLess(grown, 256 + SLACK_MIB,
                                "RSS grew %.0f MiB for 3 x %d x 256 KiB published with the "
                                "default history bound (256 MiB)" % (grown, PER_TOPIC))
            self.check_small_topic_kept(srv)


if __name__ == "__main__":
    unittest.main()
