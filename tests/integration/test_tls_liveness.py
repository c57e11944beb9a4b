"""Liveness over TLS works as on plain connections: quiet clients get a protocol Ping
(encrypted), silent ones are dropped inside the heartbeat window, talking ones never;
and TLS sessions resume (TLS 1.3 and 1.2 tickets) whichever worker takes the
reconnect, since all workers share one context and its ticket keys."""
import json
import ssl
import threading
import time
import unittest

from twtest import WS, metrics
from tlstest import TLSServer

PING_S, IDLE_S, TICK_S = 0.3, 1.0, 0.01
LOW, HIGH = IDLE_S - PING_S, IDLE_S + TICK_S + 0.05


class TLSHeartbeat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TLSServer("--ping-interval", "300ms", "--idle-timeout", "1s", "--tick", "10ms")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def test_quiet_client_gets_ping(self):
        w = WS(self.srv.tls_port, wrap=self.srv.wrap())
        fin, op, payload = w.recv_frame(timeout=2)
        self.assertEqual(op, 0x9)
        w.close()

    def test_silent_dropped_talking_kept(self):
        before = metrics(self.srv.port)["tickwire_heartbeat_timeouts_total"]
        results, alive = [], []

        def silent():
            w = WS(self.srv.tls_port, wrap=self.srv.wrap())
            t0 = time.time()  # never sends again, never answers a Ping
            closed = w.wait_eof(timeout=IDLE_S + 2)
            results.append((closed, time.time() - t0))
            w.close()

        def talker():
            w = WS(self.srv.tls_port, wrap=self.srv.wrap())
            end = time.time() + IDLE_S * 2.5
            while time.time() < end:
                w.send_text('{"type":"ping","time":1}')
                self.assertEqual(json.loads(w.recv_text()), {"type": "pong", "time": 1})
                time.sleep(0.1)
            alive.append(True)
            w.close()

        threads = [threading.Thread(target=silent) for _ in range(5)]
        threads.append(threading.Thread(target=talker))
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        self.assertEqual(alive, [True])
        self.assertEqual(len(results), 5)
        for closed, latency in results:
            self.assertTrue(closed)
            self.assertGreaterEqual(latency, LOW)
            self.assertLessEqual(latency, HIGH + 0.1, "detected after %.3fs" % latency)
        self.assertEqual(metrics(self.srv.port)["tickwire_heartbeat_timeouts_total"], before + 5)


class TLSResume(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TLSServer(workers=2)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def session_of(self, ctx):
        # The ticket follows the handshake: reading the 101 makes sure it has arrived.
        w = WS(self.srv.tls_port, wrap=self.srv.wrap(ctx))
        self.assertFalse(w.sock.session_reused)
        session = w.sock.session
        w.close()
        return session

    def resume(self, version):
        ctx = self.srv.context(minimum=version, maximum=version)
        session = self.session_of(ctx)
        self.assertIsNotNone(session)
        # SO_REUSEPORT spreads the reconnects (new source ports) over both workers; the
        # chance that 12 all land on the issuing worker is 2^-12.
        for i in range(12):
            w = WS(self.srv.tls_port, wrap=self.srv.wrap(ctx, session=session))
            self.assertTrue(w.sock.session_reused, "reconnect %d not resumed" % i)
            self.assertEqual(w.sock.version(), "TLSv1.3" if version == ssl.TLSVersion.TLSv1_3
                             else "TLSv1.2")
            w.send_text('{"type":"ping","time":%d}' % i)
            self.assertEqual(json.loads(w.recv_text())["time"], i)
            if version == ssl.TLSVersion.TLSv1_3:
                session = w.sock.session  # a fresh ticket each time, as a client keeps them
            w.close()

    def test_tls13_resumption(self):
        self.resume(ssl.TLSVersion.TLSv1_3)

    def test_tls12_resumption(self):
        self.resume(ssl.TLSVersion.TLSv1_2)


if __name__ == "__main__":
    unittest.main()
