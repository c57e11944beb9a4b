"""RFC 6455 over real sockets: fragmentation, splitting, every protocol error's close code,
the close handshake."""
import json
import struct
import time
import unittest

from twtest import wait_for, Server, WS, frame, metrics

PING = b'{"type":"ping","time":42}'
PONG = '{"type":"pong","time":42}'


class Frames(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--max-message", "1KiB")
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def ws(self):
        w = WS(self.port)
        self.addCleanup(w.close)
        return w

    def assert_fails(self, data, code):
        w = self.ws()
        w.send(data)
        w.expect_close(code)
        self.assertTrue(w.wait_eof(), "server must close TCP after failing")

    # ---- delivery shapes ----

    def test_fragmented_text_with_ping_interleaved(self):
        w = self.ws()
        w.send(frame(0x1, PING[:5], fin=False) + frame(0x9, b"mid") +
               frame(0x0, PING[5:12], fin=False) + frame(0x0, PING[12:]))
        self.assertEqual(w.recv_frame(), (True, 0xA, b"mid"))
        self.assertEqual(w.recv_text(), PONG)

    def test_byte_by_byte(self):
        w = self.ws()
        for b in frame(0x1, PING):
            w.send(bytes([b]))
            time.sleep(0.001)
        self.assertEqual(w.recv_text(), PONG)

    def test_many_frames_in_one_write(self):
        w = self.ws()
        w.send(b"".join(frame(0x1, b'{"type":"ping","time":%d}' % i) for i in range(50)))
        for i in range(50):
            self.assertEqual(json.loads(w.recv_text()), {"type": "pong", "time": i})

    def test_time_echoed_byte_for_byte(self):
        w = self.ws()
        w.send_text('{"time": 1.50e+3 , "type":"ping"}')
        self.assertEqual(w.recv_text(), '{"type":"pong","time":1.50e+3}')

    def test_bad_json_and_unknown_type_keep_connection(self):
        w = self.ws()
        w.send_text("{nope")
        self.assertEqual(json.loads(w.recv_text())["code"], "bad_json")
        w.send_text('{"type":"dance"}')
        self.assertEqual(json.loads(w.recv_text())["code"], "unknown_type")
        w.send_text(PING)
        self.assertEqual(w.recv_text(), PONG)

    def test_protocol_ping_echoes_payload(self):
        w = self.ws()
        w.send_frame(0x9, b"x" * 125)
        self.assertEqual(w.recv_frame(), (True, 0xA, b"x" * 125))

    # ---- 1002 ----

    def test_unmasked_frame_1002(self):
        self.assert_fails(frame(0x1, PING, mask=False), 1002)

    def test_rsv_bits_1002(self):
        self.assert_fails(frame(0x1, PING, rsv=4), 1002)

    def test_reserved_opcode_1002(self):
        self.assert_fails(frame(0x3, b""), 1002)
        self.assert_fails(frame(0xB, b""), 1002)

    def test_fragmented_control_1002(self):
        self.assert_fails(frame(0x9, b"a", fin=False), 1002)

    def test_oversized_control_1002(self):
        self.assert_fails(frame(0x9, b"a" * 126), 1002)

    def test_continuation_without_start_1002(self):
        self.assert_fails(frame(0x0, b"abc"), 1002)

    def test_new_message_inside_fragmented_1002(self):
        self.assert_fails(frame(0x1, b"ab", fin=False) + frame(0x1, b"cd"), 1002)

    def test_binary_message_1003(self):
        self.assert_fails(frame(0x2, b"\x00\x01"), 1003)

    # ---- 1007 ----

    def test_invalid_utf8_1007(self):
        self.assert_fails(frame(0x1, b'{"a":"\xc0\xaf"}'), 1007)

    def test_invalid_utf8_rejected_early_in_fragmented_message(self):
        w = self.ws()
        w.send(frame(0x1, b"\xed\xa0\x80", fin=False))  # a surrogate, message unfinished
        w.expect_close(1007)

    def test_utf8_split_across_fragments_is_fine(self):
        w = self.ws()
        msg = '{"type":"ping","time":"\u20ac"}'.encode()
        cut = msg.index(b"\xe2") + 1
        w.send(frame(0x1, msg[:cut], fin=False) + frame(0x0, msg[cut:]))
        self.assertEqual(w.recv_text(), '{"type":"pong","time":"\u20ac"}')

    # ---- 1009 ----

    def test_message_over_max_1009(self):
        self.assert_fails(frame(0x1, b" " * 1100), 1009)

    def test_fragmented_message_over_max_1009(self):
        w = self.ws()
        for _ in range(3):
            w.send(frame(0x1 if _ == 0 else 0x0, b" " * 400, fin=False))
        w.expect_close(1009)

    def test_header_claiming_huge_length_1009_without_payload(self):
        w = self.ws()
        w.send(frame(0x1, b"", length=1 << 40)[:14])
        w.expect_close(1009)

    # ---- close handshake ----

    def test_close_echoes_code(self):
        for code in (1000, 1001, 3000, 4999):
            w = self.ws()
            w.send_frame(0x8, struct.pack("!H", code) + b"bye")
            w.expect_close(code)
            self.assertTrue(w.wait_eof())

    def test_empty_close_echoed_empty(self):
        w = self.ws()
        w.send_frame(0x8, b"")
        fin, op, payload = w.recv_frame()
        self.assertEqual((op, payload), (0x8, b""))
        self.assertTrue(w.wait_eof())

    def test_invalid_close_codes_1002(self):
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000):
            self.assert_fails(frame(0x8, struct.pack("!H", code)), 1002)

    def test_one_byte_close_1002(self):
        self.assert_fails(frame(0x8, b"\x03"), 1002)

    def test_close_reason_bad_utf8_1007(self):
        self.assert_fails(frame(0x8, struct.pack("!H", 1000) + b"\xff"), 1007)

    def test_close_counted_by_code(self):
        key = 'tickwire_closes_total{code="1000"}'
        before = metrics(self.port)[key]
        w = self.ws()
        w.send_frame(0x8, struct.pack("!H", 1000))
        w.expect_close(1000)
        self.assertTrue(w.wait_eof())
        # The server half-closes and waits for our FIN (lingering close): the session ends
        # when we close, as a real client does after the server's FIN.
        w.close()
        self.assertTrue(wait_for(lambda: metrics(self.port)[key] == before + 1, timeout=5))


if __name__ == "__main__":
    unittest.main()
