#!/usr/bin/env python3
"""Resume and flood figures for issue 9 (run by hand; prints figures with units).

    bench/resume/run.py [build]            # build dir with the tickwire binary

1. A `since:0` replay of 1,000 x 8 KB messages (default flags: --max-queue 4MiB,
   --history 1024) to a fast reader and to a slow one (reads 16 KiB every 10 ms, ~1.6
   MB/s): time to `subscribed`, messages received, recovered, server RSS before/peak.
2. Topic-table flood: one connection subscribes and unsubscribes 100,000 random names:
   time, topics left, RSS; then a publish to a new topic.
3. History flood: 3 topics x 1,100 publishes of 256 KiB (--max-message 1MiB, default
   --max-history-bytes 256MiB): RSS peak and after, history bytes held.
Each case starts its own server on a free loopback port."""
import json
import os
import random
import socket
import string
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build")
os.environ["TICKWIRE_BIN"] = os.path.join(build, "tickwire")

import twtest  # noqa: E402
from twtest import Server, WS, frame, metrics, parse_frames  # noqa: E402

twtest.BIN = os.environ["TICKWIRE_BIN"]


class RssSampler:
    def __init__(self, srv, period=0.02):
        self.srv, self.period, self.peak, self.stop_ = srv, period, 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_:
            self.peak = max(self.peak, self.srv.rss_kib())
            time.sleep(self.period)

    def stop(self):
        self.stop_ = True
        self.t.join()
        return self.peak


def publish(port, topic, n, size):
    p = WS(port, timeout=60)
    pad = "x" * size
    for start in range(0, n, 50):
        k = min(50, n - start)
        p.send(b"".join(frame(0x1, ('{"type":"publish","topic":"%s","data":{"i":%d,"p":"%s"}}'
                                    % (topic, start + i + 1, pad)).encode()) for i in range(k)))
        for _ in range(k):
            p.recv_text(timeout=60)
    p.close()


def replay(slow):
    with Server(workers=2) as srv:
        publish(srv.port, "rp", 1000, 8000)
        rss0 = srv.rss_kib()
        sampler = RssSampler(srv)
        w = WS(srv.port, rcvbuf=16384 if slow else None, timeout=60)
        t0 = time.time()
        w.send_text('{"type":"subscribe","topic":"rp","since":0}')
        got, sub, buf = 0, None, b""
        while sub is None:
            chunk = w.sock.recv(16384 if slow else 1 << 20)
            if not chunk:
                break
            frames, buf = parse_frames(buf + chunk)
            for _, op, payload in frames:
                m = json.loads(payload)
                if m["type"] == "message":
                    got += 1
                elif m["type"] == "subscribed":
                    sub = m
            if slow:
                time.sleep(0.01)
        dt = time.time() - t0
        peak = sampler.stop()
        w.close()
        print("replay since:0, 1,000 x 8 KB, %s reader: %.2f s to subscribed, %d messages, "
              "recovered=%s, server RSS %.1f MiB before, peak +%.1f MiB"
              % ("slow (16 KiB / 10 ms)" if slow else "fast", dt, got,
                 sub and sub.get("recovered"), rss0 / 1024, (peak - rss0) / 1024))


def topic_flood():
    with Server(workers=2) as srv:
        rss0 = srv.rss_kib()
        w = WS(srv.port, timeout=60)
        rnd = random.Random(9)
        t0 = time.time()
        total = 100000
        for start in range(0, total, 1000):
            names = ["".join(rnd.choice(string.ascii_letters) for _ in range(12))
                     for _ in range(1000)]
            w.send(b"".join(frame(0x1, ('{"type":"subscribe","topic":"%s"}' % n).encode()) +
                            frame(0x1, ('{"type":"unsubscribe","topic":"%s"}' % n).encode())
                            for n in names))
            for _ in range(2000):
                w.recv_text(timeout=60)
        dt = time.time() - t0
        m = metrics(srv.port)
        st, _, body = twtest.publish_http(srv.port, "brand.new", b"1")
        print("topic flood: 100,000 subscribe+unsubscribe of random names in %.2f s "
              "(%.0f /s); topics held after: %d; server RSS %.1f -> %.1f MiB; "
              "publish to a new topic: %d %s"
              % (dt, total / dt, m.get("tickwire_topics", -1), rss0 / 1024, srv.rss_kib() / 1024, st,
                 body.decode()))
        w.close()


def history_flood():
    with Server("--max-message", "1MiB", workers=2) as srv:
        rss0 = srv.rss_kib()
        sampler = RssSampler(srv, 0.05)
        t0 = time.time()
        threads = [threading.Thread(target=publish, args=(srv.port, "h%d" % k, 1100, 262144))
                   for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.time() - t0
        peak = sampler.stop()
        m = metrics(srv.port)
        print("history flood: 3 x 1,100 x 256 KiB (825 MiB) published in %.1f s; server RSS "
              "%.1f MiB before, peak %.1f MiB, after %.1f MiB; history held %.1f MiB "
              "(bound 256 MiB), %d messages trimmed"
              % (dt, rss0 / 1024, peak / 1024, srv.rss_kib() / 1024,
                 m.get("tickwire_history_bytes", -1) / 2 ** 20, m.get("tickwire_history_trimmed_total", -1)))


if __name__ == "__main__":
    print("command: bench/resume/run.py %s" % build)
    replay(False)
    replay(True)
    topic_flood()
    history_flood()
