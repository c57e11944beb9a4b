"""Cluster on one Redis (DESIGN 10, issue 12), with a real redis-server on a port of its
own: publishes through any node reach subscribers on every node with Redis's seqs and
epoch; a node killed with SIGKILL loses nothing for clients that resume elsewhere; an id
retried on another node is applied once; Redis going away and coming back (with its data,
and empty) is survived truthfully: `unavailable`, backfill, `resync`."""
import json
import os
import signal
import threading
import time
import unittest

from redistest import Redis, RedisCluster, command, info
from twtest import WS, HttpConn, Server, get, metrics, publish_http, wait_for


def node(redis, *args, workers=2):
    return Server("--broker", redis.url(), *args, workers=workers)


def wait_broker(srv, up=True, timeout=10):
    want = "broker=up" if up else "broker=down"
    assert wait_for(lambda: want in get(srv.port, "/healthz")[2].decode(), timeout), want


class Subscriber:
    """One client of topic `topic`: subscribes on ports[0]; when its node dies it moves to
    the next port and resumes with since + epoch, as the client library does. Every
    message's seq is kept, in arrival order; `resyncs` counts resync notices."""

    def __init__(self, ports, topic):
        self.ports, self.topic = list(ports), topic
        self.seqs, self.epochs, self.resyncs, self.moves = [], set(), 0, 0
        self.epoch, self.last = None, 0
        self.stop = False
        self.ready = threading.Event()
        self.error = None
        self.ws = self._connect()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _connect(self):
        ws = WS(self.ports[0])
        req = {"type": "subscribe", "topic": self.topic}
        if self.epoch is not None:
            req.update(since=self.last, epoch=self.epoch)
        ws.send_text(json.dumps(req))
        while True:
            m = json.loads(ws.recv_text(timeout=10))
            if m["type"] == "subscribed":
                if self.epoch is not None and not m.get("recovered"):
                    raise AssertionError("resume not recovered: %r" % m)
                self.epoch = m["epoch"]
                return ws
            self._take(m)

    def _take(self, m):
        if m["type"] == "message":
            self.seqs.append(m["seq"])
            self.last = m["seq"]
        elif m["type"] == "resync":  # as the client library does: start again from now
            self.resyncs += 1
            self.epochs.add(m["epoch"])
            self.ws.send_text(json.dumps({"type": "subscribe", "topic": self.topic,
                                          "snapshot": True}))
        elif m["type"] == "subscribed":
            self.epoch = m["epoch"]

    def _run(self):
        self.ready.set()
        while not self.stop:
            try:
                m = json.loads(self.ws.recv_text(timeout=0.5))
            except TimeoutError:
                continue
            except (EOFError, OSError):
                try:
                    self.ws.sock.close()
                except OSError:
                    pass
                if self.stop:
                    return
                self.ports = self.ports[1:] + self.ports[:1]
                self.moves += 1
                for _ in range(100):
                    try:
                        self.ws = self._connect()
                        break
                    except (OSError, EOFError, ConnectionError):
                        time.sleep(0.05)
                else:
                    self.error = "could not reconnect"
                    return
                continue
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.error = repr(e)
                return
            self._take(m)

    def wait_for_seq(self, n, timeout=20):
        return wait_for(lambda: self.last >= n or self.error, timeout) and not self.error

    def close(self):
        self.stop = True
        self.thread.join(5)
        try:
            self.ws.close()
        except OSError:
            pass


class Publisher:
    """Publishes `data` i = 1, 2, ... on topic through a WebSocket on one node at `rate`
    per second, with an id per message; keeps the seqs Redis acknowledged and counts the
    `unavailable` answers."""

    def __init__(self, port, topic, rate, ids=True):
        self.ws = WS(port)
        self.topic, self.rate, self.ids = topic, rate, ids
        self.acked, self.unavailable, self.sent = [], 0, 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.reader.start()

    def _run(self):
        t0 = time.time()
        while not self.stop:
            self.sent += 1
            msg = {"type": "publish", "topic": self.topic, "data": self.sent}
            if self.ids:
                msg["id"] = "m%d" % self.sent
            self.ws.send_text(json.dumps(msg))
            delay = t0 + self.sent / self.rate - time.time()
            if delay > 0:
                time.sleep(delay)

    def _read(self):
        while True:
            try:
                m = json.loads(self.ws.recv_text(timeout=1))
            except TimeoutError:
                if self.stop:
                    return
                continue
            except (EOFError, OSError):
                return
            if m["type"] == "published":
                self.acked.append(m["seq"])
            elif m.get("code") == "unavailable":
                self.unavailable += 1

    def finish(self, timeout=10):
        self.stop = True
        self.thread.join(5)
        want = self.sent
        wait_for(lambda: len(self.acked) + self.unavailable >= want, timeout)
        self.reader.join(timeout)
        self.ws.close()


class OnRedis:
    """Tests 1-3 of issue 12, on whatever Redis setUp starts (standalone, or Cluster)."""

    def nodes(self, n, *args):
        out = []
        for _ in range(n):
            s = node(self.redis, *args)
            self.addCleanup(self.stopped_clean, s)
            out.append(s)
        for s in out:
            wait_broker(s)
        return out

    def stopped_clean(self, s):
        """A node stops by itself on SIGTERM with status 0 (under ASan: no leak, no
        error); one the test killed is left as it is."""
        rc = s.stop()
        if rc != -signal.SIGKILL:
            self.assertEqual(rc, 0, "\n".join(s.lines[-20:]))

    def test_1_three_nodes_same_seqs_and_epoch(self):
        a, b, c = self.nodes(3)
        subs = [Subscriber([p], "t1") for p in (a.port, b.port, c.port) for _ in range(2)]
        for s in subs:
            self.addCleanup(s.close)
        epochs = {s.epoch for s in subs}
        self.assertEqual(len(epochs), 1, "one epoch for the topic on every node")
        pub = WS(a.port)
        for i in range(1, 201):
            pub.send_text(json.dumps({"type": "publish", "topic": "t1", "data": i}))
        seqs = [json.loads(pub.recv_text())["seq"] for _ in range(200)]
        self.assertEqual(seqs, list(range(1, 201)))
        st, _, body = publish_http(b.port, "t1", b'{"via":"http"}')
        self.assertEqual((st, json.loads(body)), (200, {"seq": 201}))
        for s in subs:
            self.assertTrue(s.wait_for_seq(201), s.error)
            self.assertEqual(s.seqs, list(range(1, 202)))
        # Late joiners anywhere see the same position and epoch, and resume from Redis.
        late = WS(c.port)
        late.send_text(json.dumps({"type": "subscribe", "topic": "t1", "since": 195,
                                   "epoch": epochs.pop()}))
        got = [json.loads(late.recv_text()) for _ in range(7)]
        self.assertEqual([m["seq"] for m in got[:6]], list(range(196, 202)))
        self.assertEqual(got[6]["type"], "subscribed")
        self.assertTrue(got[6]["recovered"])
        m = metrics(a.port)
        self.assertEqual(m.get("tickwire_broker_up"), 1)
        self.assertGreaterEqual(m.get("tickwire_broker_publishes_total", 0), 200)

    def test_2_kill_a_node_subscribers_resume_elsewhere(self):
        a, b, c = self.nodes(3)
        subs = [Subscriber([b.port, c.port], "t2") for _ in range(5)]
        for s in subs:
            self.addCleanup(s.close)
        pub = Publisher(a.port, "t2", rate=1000)
        time.sleep(1.0)
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait()
        time.sleep(1.5)
        pub.finish()
        self.assertEqual(pub.unavailable, 0)
        n = max(pub.acked)
        self.assertGreater(n, 1000)
        for s in subs:
            self.assertTrue(s.wait_for_seq(n), s.error)
            self.assertEqual(s.moves, 1, "moved from the dead node to the other")
            self.assertEqual(s.seqs, list(range(1, n + 1)), "exactly 1..N, no gap, no repeat")

    def test_3_retried_id_on_another_node_is_applied_once(self):
        a, b = self.nodes(2)
        sub = Subscriber([b.port], "t3")
        self.addCleanup(sub.close)
        st, _, body = publish_http(a.port, "t3&id=order-17", b'{"px":1}')
        self.assertEqual((st, json.loads(body)), (200, {"seq": 1}))
        # The ack was "lost": the client retries through the other node.
        st, _, body = publish_http(b.port, "t3&id=order-17", b'{"px":1}')
        self.assertEqual((st, json.loads(body)), (200, {"seq": 1, "duplicate": True}))
        ws = WS(b.port)
        ws.send_text(json.dumps({"type": "publish", "topic": "t3", "data": 2, "id": "order-17"}))
        self.assertEqual(json.loads(ws.recv_text()), {"type": "published", "topic": "t3",
                                                      "seq": 1, "id": "order-17",
                                                      "duplicate": True})
        publish_http(a.port, "t3", b'"next"')
        self.assertTrue(sub.wait_for_seq(2), sub.error)
        self.assertEqual(sub.seqs, [1, 2])



class Standalone(OnRedis, unittest.TestCase):
    """One redis-server; also what happens when it goes away (tests 4 and 5)."""

    def setUp(self):
        self.redis = Redis()
        self.addCleanup(self.redis.close)

    def test_4_redis_away_for_5s_then_back_with_its_data(self):
        # Redis keeps its data across the restart here (append-only file, fsync always).
        self.redis.close()
        self.redis = Redis(persist=True)
        self.addCleanup(self.redis.close)
        a, b = self.nodes(2)
        subs = [Subscriber([p], "t4") for p in (a.port, b.port)]
        for s in subs:
            self.addCleanup(s.close)
        pub = Publisher(a.port, "t4", rate=200)
        time.sleep(1.0)
        self.redis.stop()
        wait_broker(a, up=False)
        time.sleep(5)
        self.redis.start()
        wait_broker(a)
        wait_broker(b)
        time.sleep(1.0)
        pub.finish()
        self.assertGreater(pub.unavailable, 0, "publishes were refused while Redis was away")
        n = max(pub.acked)
        for s in subs:
            self.assertTrue(s.wait_for_seq(n), s.error)
            self.assertEqual(s.moves, 0, "every client connection was kept")
            self.assertEqual(s.seqs, list(range(1, n + 1)), "every accepted message once")
            self.assertEqual(s.resyncs, 0)
        self.assertTrue(set(pub.acked) <= set(subs[0].seqs))
        self.assertGreaterEqual(metrics(b.port).get("tickwire_broker_reconnects_total", 0), 1)

    def test_5_redis_restarted_empty_gives_resync(self):
        a, b = self.nodes(2)
        sub = Subscriber([b.port], "t5")
        self.addCleanup(sub.close)
        old = sub.epoch
        for i in range(5):
            publish_http(a.port, "t5", b"%d" % i)
        self.assertTrue(sub.wait_for_seq(5), sub.error)
        self.redis.stop()
        self.redis.start()  # no persistence: everything is gone
        wait_broker(a)
        wait_broker(b)
        assert wait_for(lambda: sub.resyncs >= 1, 10), "subscriber told to resync"
        self.assertNotIn(old, sub.epochs, "the resync names the new epoch")
        st, _, body = publish_http(a.port, "t5", b'"after"')
        self.assertEqual(st, 200)
        # Seq 1 again, but of the new epoch, announced before it: never a silent reuse.
        assert wait_for(lambda: len(sub.seqs) >= 6, 10)
        self.assertEqual(sub.seqs, [1, 2, 3, 4, 5, json.loads(body)["seq"]])
        self.assertGreaterEqual(metrics(b.port).get("tickwire_broker_resyncs_total", 0), 1)



    def test_9_a_node_with_a_shorter_history_loads_the_newest(self):
        a = node(self.redis, "--history", "16")
        b = node(self.redis, "--history", "4")
        for s in (a, b):
            self.addCleanup(self.stopped_clean, s)
            wait_broker(s)
        for i in range(1, 17):
            publish_http(a.port, "t9", b"%d" % i)
        ws = WS(b.port)
        ws.send_text(json.dumps({"type": "subscribe", "topic": "t9", "snapshot": True}))
        self.assertEqual(json.loads(ws.recv_text()),
                         {"type": "message", "topic": "t9", "seq": 16, "data": 16})
        sub = json.loads(ws.recv_text())
        self.assertEqual((sub["type"], sub["seq"]), ("subscribed", 16))
        ws.send_text(json.dumps({"type": "subscribe", "topic": "t9", "since": 13,
                                 "epoch": sub["epoch"]}))
        got = [json.loads(ws.recv_text()) for _ in range(4)]
        self.assertEqual([(m.get("seq"), m.get("data")) for m in got[:3]],
                         [(14, 14), (15, 15), (16, 16)])
        self.assertTrue(got[3]["recovered"])

    def test_10_pipelined_http_publishes_are_answered_in_order(self):
        """A publish's HTTP answer waits for Redis; the requests behind it on the same
        keep-alive connection wait for it, so answers keep the requests' order."""
        (a,) = self.nodes(1)
        c = HttpConn(a.port)
        self.addCleanup(c.close)
        one = ("POST /publish?topic=t10 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
               "\r\nContent-Length: %d\r\n\r\n%s")
        c.sock.sendall("".join(one % (len(str(i)), i) for i in range(1, 6)).encode() +
                       b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        got = [c.response() for _ in range(6)]
        self.assertEqual([json.loads(r[2]) for r in got[:5]], [{"seq": i} for i in range(1, 6)])
        self.assertEqual(got[5][2], b"ok broker=up\n")

    def test_11_deferred_answer_keeps_cors(self):
        (a,) = self.nodes(1)
        st, headers, body = publish_http(a.port, "t11", b"1", extra="Origin: http://t\r\n")
        self.assertEqual((st, json.loads(body)), (200, {"seq": 1}))
        self.assertEqual(headers.get("access-control-allow-origin"), "http://t")
        st, headers, _ = publish_http(a.port, "t11", b"2")
        self.assertNotIn("access-control-allow-origin", headers)

    def lose(self, topic, data, maxlen=1024):
        """A message sequenced and stored in Redis whose PUBLISH never reached the nodes
        (pub/sub is at-most-once): the publish script's steps without the last."""
        seq = int(command(self.redis.port, "HINCRBY", "tw:{%s}:meta" % topic, "seq", "1")[1:])
        command(self.redis.port, "XADD", "tw:{%s}:hist" % topic, "MAXLEN", str(maxlen),
                "%d-0" % seq, "d", data)
        return seq

    def test_7_a_lost_pubsub_message_is_backfilled_before_newer_ones(self):
        a, b = self.nodes(2)
        sub = Subscriber([b.port], "t7")
        self.addCleanup(sub.close)
        publish_http(a.port, "t7", b"1")
        self.assertTrue(sub.wait_for_seq(1), sub.error)
        self.assertEqual([self.lose("t7", "%d" % i) for i in (2, 3)], [2, 3])
        st, _, body = publish_http(a.port, "t7", b"4")
        self.assertEqual(json.loads(body), {"seq": 4})
        self.assertTrue(sub.wait_for_seq(4), sub.error)
        self.assertEqual(sub.seqs, [1, 2, 3, 4], "the jump 1 -> 4 was filled from the stream")
        self.assertGreaterEqual(metrics(b.port).get("tickwire_broker_backfills_total", 0), 1)

    def test_8_a_range_the_stream_lost_gives_resync(self):
        a, b = self.nodes(2, "--history", "4")
        sub = Subscriber([b.port], "t8")
        self.addCleanup(sub.close)
        publish_http(a.port, "t8", b"1")
        self.assertTrue(sub.wait_for_seq(1), sub.error)
        for i in range(2, 12):  # 2..11, of which the stream keeps the last 4
            self.lose("t8", "%d" % i, maxlen=4)
        publish_http(a.port, "t8", b"12")
        assert wait_for(lambda: sub.resyncs >= 1, 10), "subscriber told to resync"
        self.assertTrue(sub.wait_for_seq(12), sub.error)  # the snapshot it asked for
        self.assertEqual(sub.seqs, [1, 12], "nothing of the lost range is made up")


class Sharded(OnRedis, unittest.TestCase):
    """Redis Cluster with three masters (test 6): each topic lives on the master of its
    hash-tag slot, so topics spread over the shards, and tests 1-3 hold there too."""

    def setUp(self):
        self.redis = RedisCluster(3)
        self.addCleanup(self.redis.close)

    def test_6_topics_spread_over_the_shards(self):
        a, b = self.nodes(2)
        sub = WS(b.port)
        topics = ["sym%d" % i for i in range(30)]
        for t in topics:
            sub.send_text(json.dumps({"type": "subscribe", "topic": t}))
            self.assertEqual(json.loads(sub.recv_text())["type"], "subscribed")
        for t in topics:
            st, _, body = publish_http(a.port, t, b'{"px":1}')
            self.assertEqual((st, json.loads(body)), (200, {"seq": 1}))
        got = {}
        for _ in topics:
            m = json.loads(sub.recv_text())
            got[m["topic"]] = m["seq"]
        self.assertEqual(got, {t: 1 for t in topics})
        keys = [int(info(r.port, "DBSIZE").split(":")[1].split()[0]) for r in self.redis.nodes]
        self.assertTrue(all(k > 0 for k in keys), "every master holds topics: %r" % keys)
        self.assertEqual(sum(keys), 2 * len(topics), "meta + stream per topic")


if __name__ == "__main__":
    unittest.main()
