"""A topic with no subscribers and no history is freed (DESIGN 7, issue 9 item 4). Before
the fix one unauthenticated connection subscribing to and unsubscribing from 100,000
random names filled the topic table for good: afterwards every publish to a new topic got
`503 too many topics`. Here one connection does that with 100,001 distinct names (frames
pipelined in batches, every reply read), then a POST /publish to a brand-new topic must
answer 200 with a seq and a WebSocket subscribe to another new topic must answer
`subscribed`. Default --max-topics (100,000)."""
import json
import os
import unittest

from twtest import Server, WS, frame, parse_frames, publish_http

NAMES = 100001
BATCH = 1000  # names per batch: 2,000 frames out, 2,000 replies in


class TopicsFreed(unittest.TestCase):
    def test_subscribe_unsubscribe_churn_does_not_fill_the_table(self):
        with Server(workers=2) as srv:
            w = WS(srv.port, timeout=30)
            self.addCleanup(w.close)
            tag = os.urandom(6).hex()
            bad = []
            for start in range(0, NAMES, BATCH):
                names = ["churn.%s.%d" % (tag, i)
                         for i in range(start, min(NAMES, start + BATCH))]
                w.send(b"".join(
                    frame(0x1, ('{"type":"subscribe","topic":"%s"}' % t).encode()) +
                    frame(0x1, ('{"type":"unsubscribe","topic":"%s"}' % t).encode())
                    for t in names))
                replies = []
                data = w.buf
                w.buf = b""
                while len(replies) < 2 * len(names):
                    got, data = parse_frames(data)
                    replies += [json.loads(p) for _, op, p in got if op == 0x1]
                    if len(replies) < 2 * len(names):
                        chunk = w.sock.recv(262144)
                        self.assertTrue(chunk, "closed after %d replies" % len(replies))
                        data += chunk
                w.buf = data
                for i, t in enumerate(names):
                    sub, unsub = replies[2 * i], replies[2 * i + 1]
                    if sub.get("type") != "subscribed" or unsub.get("type") != "unsubscribed":
                        bad.append((t, sub, unsub))
            fresh = "fresh.%s" % tag
            st, _, body = publish_http(srv.port, fresh, b'{"after":"churn"}')
            self.assertEqual(st, 200, "publish to a new topic after %d subscribe/unsubscribe "
                             "pairs: %d %r" % (NAMES, st, body))
            self.assertEqual(json.loads(body), {"seq": 1})
            w.send_text('{"type":"subscribe","topic":"other.%s"}' % tag)
            r = json.loads(w.recv_text(timeout=10))
            self.assertEqual(r.get("type"), "subscribed", r)
            self.assertEqual(bad, [], "%d names got other replies, first: %r"
                             % (len(bad), bad[:1]))


if __name__ == "__main__":
    unittest.main()
