"""A `since` replay larger than --max-queue (DESIGN 5, issue 9 item 3). The replay streams
from history at the pace the client reads, never dumped into the send queue beyond
--max-queue; its messages come before `subscribed`; `"recovered":true` means every message
with seq > N was delivered, in order (before the fix: 1,000 x 8 KB in history and
--max-queue 1MiB gave a fast reader seqs 509..1000 and still `"recovered":true`; with
--slow-consumer disconnect it was closed 1013 and could never resume).

- a fast reader, a slow reader (small SO_RCVBUF, small sips with sleeps), and a fast reader
  under --slow-consumer disconnect each get seqs 1..1000 exactly once, in order, then
  `subscribed` with seq 1000 and `"recovered":true`;
- under a history that moves while a slow reader replays (a publisher adds 3,000 more,
  --history 1024): seqs only increase, and `"recovered":true` is only said when the
  messages before `subscribed` are exactly 1..S (S = its seq); `false` is acceptable."""
import json
import threading
import time
import unittest

from twtest import Server, WS, close_code, frame, parse_frames

N = 1000
PAD = "p" * 8000  # ~8 KB messages: 8 MB of history against a 1 MiB queue
FLAGS = ("--max-queue", "1MiB", "--history", "1024")


def publish(port, topic, first, count, ws=None):
    """Publishes seqs first..first+count-1 (data.i = the expected seq), in batches."""
    p = ws or WS(port)
    for start in range(first, first + count, 50):
        n = min(50, first + count - start)
        p.send(b"".join(frame(0x1, ('{"type":"publish","topic":"%s","data":{"i":%d,"pad":"%s"}}'
                                    % (topic, start + i, PAD)).encode()) for i in range(n)))
        for i in range(n):
            r = json.loads(p.recv_text(timeout=30))
            assert r["type"] == "published" and r["seq"] == start + i, r
    if ws is None:
        p.close()


class Replay:
    """Reads one subscriber's stream: messages before and after `subscribed`."""

    def __init__(self, port, topic, rcvbuf=None):
        self.w = WS(port, rcvbuf=rcvbuf, timeout=30)
        self.w.send_text('{"type":"subscribe","topic":"%s","since":0}' % topic)
        self.before, self.after = [], []
        self.subscribed = None
        self.close = None
        self.bad_data = []

    def feed(self, data):
        frames, self.w.buf = parse_frames(self.w.buf + data)
        for fin, op, payload in frames:
            if op == 0x8:
                self.close = payload
            elif op == 0x1:
                m = json.loads(payload)
                if m["type"] == "message":
                    if m["data"]["i"] != m["seq"]:
                        self.bad_data.append(m["seq"])
                    (self.before if self.subscribed is None else self.after).append(m["seq"])
                elif m["type"] == "subscribed":
                    assert self.subscribed is None, "two subscribed replies"
                    self.subscribed = m
                else:
                    raise AssertionError("unexpected %r" % m)

    def read(self, done, sip=None, pause=0.0, timeout=40):
        """Reads until done(self) or the connection ends; sip/pause: a slow reader."""
        self.feed(b"")
        deadline = time.time() + timeout
        while not done(self) and self.close is None and time.time() < deadline:
            try:
                chunk = self.w.sock.recv(sip or 262144)
            except (ConnectionResetError, TimeoutError):
                break  # the assertions say what was missing
            if not chunk:
                break
            self.feed(chunk)
            if pause:
                time.sleep(pause)
        return self


class ReplayBounded(unittest.TestCase):
    def check_full_replay(self, r):
        self.assertIsNone(r.close, "closed during the replay: code %r after %d messages"
                          % (close_code(r.close or b""), len(r.before)))
        self.assertIsNotNone(r.subscribed, "no `subscribed` after %d messages" % len(r.before))
        got = r.before
        self.assertEqual(got, list(range(1, N + 1)),
                         "replay since 0 of %d messages gave %d (first %s, last %s) with %r"
                         % (N, len(got), got[:1], got[-1:], r.subscribed))
        self.assertEqual(r.bad_data, [])
        self.assertEqual(r.subscribed.get("seq"), N)
        self.assertIs(r.subscribed.get("recovered"), True, r.subscribed)

    def replay_case(self, *flags, rcvbuf=None, sip=None, pause=0.0):
        with Server(*FLAGS, *flags, workers=2) as srv:
            publish(srv.port, "rp", 1, N)
            r = Replay(srv.port, "rp", rcvbuf).read(lambda r: r.subscribed is not None,
                                                     sip=sip, pause=pause)
            self.check_full_replay(r)
            r.w.close()

    def test_fast_reader_gets_everything_then_recovered(self):
        self.replay_case()

    def test_slow_reader_gets_everything_then_recovered(self):
        self.replay_case(rcvbuf=4096, sip=8192, pause=0.002)

    def test_disconnect_policy_does_not_close_a_replaying_reader(self):
        self.replay_case("--slow-consumer", "disconnect")

    def test_recovered_is_truthful_while_history_moves(self):
        more = 3000
        with Server(*FLAGS, workers=2) as srv:
            publish(srv.port, "mv", 1, N)
            pub = WS(srv.port, timeout=30)
            errors = []

            def keep_publishing():
                try:
                    publish(srv.port, "mv", N + 1, more, ws=pub)
                except Exception as e:  # reported by the main thread
                    errors.append(e)

            # The replay has begun (seq 1 still in history) when the publisher starts.
            r = Replay(srv.port, "mv", rcvbuf=4096)
            r.read(lambda r: r.before or r.subscribed, sip=8192, pause=0.002)
            t = threading.Thread(target=keep_publishing, daemon=True)
            t.start()
            last = N + more
            # Done once the reader's position is the topic's head: the last message, or
            # a `subscribed` already at it (nothing live comes after that).
            r.read(lambda r: r.subscribed is not None and
                   max(r.before + r.after + [r.subscribed["seq"]]) == last,
                   sip=8192, pause=0.002, timeout=50)
            t.join(30)
            self.assertEqual(errors, [])
            self.assertIsNone(r.close, "closed with %r" % close_code(r.close or b""))
            self.assertIsNotNone(r.subscribed, "no `subscribed` (%d messages read)"
                                 % len(r.before))
            seqs = r.before + r.after
            self.assertEqual(seqs, sorted(set(seqs)), "seqs must only increase, once each")
            self.assertEqual(r.bad_data, [])
            s = r.subscribed["seq"]
            self.assertTrue(all(x > s for x in r.after), "live messages at or below S=%d" % s)
            self.assertEqual(max(seqs + [s]), last, "the reader never reached the head")
            if r.subscribed.get("recovered") is True:
                missing = sorted(set(range(1, s + 1)) - set(r.before))
                self.assertEqual(r.before, list(range(1, s + 1)),
                                 '"recovered":true with seq %d, but %d of seqs 1..%d were '
                                 "not delivered before it (first missing: %s)"
                                 % (s, len(missing), s, missing[:5]))
            else:
                self.assertIs(r.subscribed.get("recovered"), False, r.subscribed)
            r.w.close()
            pub.close()


if __name__ == "__main__":
    unittest.main()
