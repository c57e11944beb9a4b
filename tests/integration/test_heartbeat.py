"""Liveness: server Pings to quiet clients, silent clients dropped inside the promised
window, healthy ones never, and a true half-open peer (its kernel no longer ACKs)."""
import socket
import struct
import threading
import time
import unittest

import twtest
from twtest import Server, WS, metrics

PING_S, IDLE_S, TICK_S = 1.0, 3.0, 0.01
LOW, HIGH = IDLE_S - PING_S, IDLE_S + TICK_S + 0.05  # DESIGN 3 / 8 window


class Heartbeat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--ping-interval", "1s", "--idle-timeout", "3s", "--tick", "10ms")
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def test_quiet_client_gets_server_ping(self):
        w = WS(self.port)
        t0 = time.time()
        fin, op, payload = w.recv_frame(timeout=3)
        self.assertEqual(op, 0x9)
        self.assertGreaterEqual(time.time() - t0, PING_S - 0.05)
        w.close()

    def test_ping_cadence_follows_last_inbound_byte(self):
        # DESIGN 3: a client that only answers Pings gets each Ping within
        # [ping, ping + tick] of its last inbound byte (its Pong), every cycle — not
        # alternately one and two intervals apart.
        w = WS(self.port)
        pings = []
        deadline = time.time() + 5.5
        while time.time() < deadline:
            try:
                fin, op, payload = w.recv_frame(timeout=deadline - time.time())
            except (socket.timeout, TimeoutError):
                break
            if op == 0x9:
                pings.append(time.time())
                w.send_frame(0xA, payload)
        w.close()
        self.assertGreaterEqual(len(pings), 4, pings)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        for g in gaps:
            self.assertGreaterEqual(g, PING_S - 0.05, gaps)
            self.assertLessEqual(g, PING_S + TICK_S + 0.15, gaps)

    def test_silent_clients_dropped_within_window(self):
        before = metrics(self.port)["tickwire_heartbeat_timeouts_total"]
        results = []

        def one():
            w = WS(self.port)
            went_silent = time.time()  # we never send again, nor answer Pings
            closed = w.wait_eof(timeout=IDLE_S + 2)
            results.append((closed, time.time() - went_silent))
            w.close()

        threads = [threading.Thread(target=one) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(results), 20)
        for closed, latency in results:
            self.assertTrue(closed)
            self.assertGreaterEqual(latency, LOW)
            self.assertLessEqual(latency, HIGH, "detected %.3fs after silence" % latency)
        m = metrics(self.port)
        self.assertEqual(m["tickwire_heartbeat_timeouts_total"], before + 20)
        # the server's own measurement: now - last_seen, all in the (2.5, 5] s bucket
        self.assertGreaterEqual(m['tickwire_detection_seconds_bucket{le="5"}'] -
                                m['tickwire_detection_seconds_bucket{le="2"}'], 20)

    def test_client_answering_pings_is_never_dropped(self):
        w = WS(self.port)
        deadline = time.time() + 2 * IDLE_S + 1
        pings = 0
        while time.time() < deadline:
            try:
                fin, op, payload = w.recv_frame(timeout=0.5)
            except TimeoutError:
                continue
            self.assertEqual(op, 0x9, "server sent %r" % ((op, payload),))
            pings += 1
            w.send_frame(0xA, payload)
        self.assertGreaterEqual(pings, 4)
        w.send_text('{"type":"ping","time":1}')
        self.assertEqual(w.recv_text(), '{"type":"pong","time":1}')
        w.close()

    def test_app_level_ping_keeps_alive(self):
        w = WS(self.port)
        end = time.time() + 2 * IDLE_S
        while time.time() < end:
            w.send_text('{"type":"ping","time":0}')
            self.assertEqual(w.recv_text(), '{"type":"pong","time":0}')
            time.sleep(0.5)
        w.close()

    def test_half_open_peer_detected(self):
        """A drop-all BPF filter: the client's kernel ignores everything from now on,
        so it sends no FIN, no RST, no ACK. Only the heartbeat can find it."""
        w = WS(self.port)
        local_port = w.sock.getsockname()[1]
        before = metrics(self.port)["tickwire_heartbeat_timeouts_total"]
        t0 = time.time()
        twtest.attach_drop_all_filter(w.sock)
        line = twtest.wait_for(
            lambda: next((l for l in self.srv.lines
                          if "detect" in l and "127.0.0.1:%d " % local_port in l), None),
            timeout=IDLE_S + 2)
        elapsed = time.time() - t0
        self.assertIsNotNone(line, self.srv.lines[-5:])
        age_ms = int(line.split("age_ms=")[1].split()[0])
        self.assertGreaterEqual(age_ms, IDLE_S * 1000)
        self.assertLessEqual(age_ms, HIGH * 1000)
        self.assertLessEqual(elapsed, HIGH + 0.2)
        self.assertEqual(metrics(self.port)["tickwire_heartbeat_timeouts_total"], before + 1)
        w.close()


if __name__ == "__main__":
    unittest.main()
