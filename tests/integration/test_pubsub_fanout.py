"""Fan-out across workers: with --workers 4, many subscribers (spread over every worker
by SO_REUSEPORT) of one topic and of several topics each receive every message in seq
order, while publishers on different workers publish to the same topics at once — with
output coalescing on (the default) and off (--coalesce 0). The send counters agree with
what was delivered: every message went out in some send, no send was empty."""
import json
import selectors
import threading
import time
import unittest

from twtest import Server, WS, metrics

SUBS = 200
TOPICS = ["fan.%d" % i for i in range(4)]
PER_PUBLISHER = 500


class Fanout(unittest.TestCase):
    def test_every_subscriber_on_every_worker_gets_everything(self):
        self.run_fanout()

    def test_same_without_coalescing(self):
        self.run_fanout("--coalesce", "0")

    def run_fanout(self, *flags):
        with Server("--history", "16", *flags, workers=4) as srv:
            subs = []
            for i in range(SUBS):
                w = WS(srv.port)
                topics = ["fan.all", TOPICS[i % len(TOPICS)]]
                for t in topics:
                    w.send_text('{"type":"subscribe","topic":"%s"}' % t)
                for t in topics:
                    self.assertEqual(json.loads(w.recv_text())["seq"], 0)
                subs.append((w, topics))
            pubs = [WS(srv.port) for _ in range(4)]

            def run(p):
                n = 0
                for i in range(PER_PUBLISHER):
                    for t in ["fan.all"] + TOPICS:
                        p.send_text('{"type":"publish","topic":"%s","data":[%d,"x"]}' % (t, i))
                        n += 1
                for _ in range(n):
                    p.recv_text(timeout=30)

            threads = [threading.Thread(target=run, args=(p,)) for p in pubs]
            for t in threads:
                t.start()
            want = {"fan.all": len(pubs) * PER_PUBLISHER}
            for t in TOPICS:
                want[t] = len(pubs) * PER_PUBLISHER
            # Read every subscriber concurrently so none becomes a slow consumer.
            sel = selectors.DefaultSelector()
            state = {}
            for w, topics in subs:
                w.sock.setblocking(False)
                sel.register(w.sock, selectors.EVENT_READ, w)
                state[w] = {t: 0 for t in topics}
            pending = set(state)
            deadline = time.time() + 45
            while pending and time.time() < deadline:
                for key, _ in sel.select(timeout=1):
                    w = key.data
                    try:
                        chunk = w.sock.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    self.assertTrue(chunk, "server closed a subscriber")
                    w.buf += chunk
                    while True:
                        if len(w.buf) < 2:
                            break
                        n, off = w.buf[1] & 0x7F, 2
                        if n == 126:
                            if len(w.buf) < 4:
                                break
                            n, off = int.from_bytes(w.buf[2:4], "big"), 4
                        if len(w.buf) < off + n:
                            break
                        m = json.loads(w.buf[off:off + n])
                        w.buf = w.buf[off + n:]
                        seen = state[w]
                        self.assertEqual(m["seq"], seen[m["topic"]] + 1,
                                         "gap or repeat on %s" % m["topic"])
                        seen[m["topic"]] = m["seq"]
                    if all(state[w][t] == want[t] for t in state[w]):
                        pending.discard(w)
                        sel.unregister(w.sock)
            for t in threads:
                t.join()
            self.assertFalse(pending, "%d subscribers incomplete" % len(pending))
            m = metrics(srv.port)
            self.assertEqual(m["tickwire_messages_published_total"],
                             len(pubs) * PER_PUBLISHER * (1 + len(TOPICS)))
            self.assertEqual(m['tickwire_slow_consumer_total{action="conflate"}'], 0)
            delivered = sum(want[t] for _, topics in subs for t in topics)
            self.assertGreaterEqual(m["tickwire_messages_sent_total"], delivered)
            self.assertGreaterEqual(m["tickwire_send_frames_total"],
                                    m["tickwire_messages_sent_total"])
            self.assertGreater(m["tickwire_sends_total"], 0)
            self.assertLessEqual(m["tickwire_sends_total"], m["tickwire_send_frames_total"])
            for w, _ in subs:
                w.close()
            for p in pubs:
                p.close()


if __name__ == "__main__":
    unittest.main()
