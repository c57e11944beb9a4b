"""Lingering close (DESIGN 4, issue 9 item 2). After its Close frame, or an HTTP error
answer, the server shuts down its write side and reads and discards input until the peer's
FIN or --close-timeout. A close() with unread input makes the kernel send RST, and a peer
that is still writing (its oversized message, the rest of a huge request head) then loses
the Close or the answer: browsers and npm `ws` report 1006 instead of 1009.

Checked with clients that keep writing while the server gives up on them, repeated:
- raw sockets: the header of a 16 MiB message against --max-message 1MiB, the payload
  written from a thread while the client reads: Close 1009, then EOF, never a reset, and
  the writer finishes its payload, its own Close and its FIN without an error;
- npm `ws` (tests/js/send_oversized.mjs) sending a 16 MiB string: it sees 1009 every time;
- HTTP: a head over 8 KiB (431) and a bad request line (400), each followed by megabytes
  more: the whole answer, then EOF.
--close-timeout is generous (10 s) so that a slow machine cannot turn a correct lingering
close into a timeout; every write here takes well under a second on loopback."""
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import unittest

from twtest import Server, WS, close_code, frame, parse_frames, parse_responses

MiB = 1 << 20
BIG = 16 * MiB
REPEATS = 10
JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js")
SERVER_FLAGS = ("--max-message", "1MiB", "--close-timeout", "10s")


class Writer(threading.Thread):
    """Writes `first`, then `size` filler bytes in 64 KiB chunks, then `last`, then shuts
    down its write side, as a client still sending its message would; keeps the error."""

    def __init__(self, sock, first, size, last=b"", fill=b"\x00"):
        super().__init__(daemon=True)
        self.sock, self.first, self.size, self.last = sock, first, size, last
        self.fill = fill
        self.error = None
        self.sent = 0

    def run(self):
        chunk = self.fill * 65536
        try:
            self.sock.sendall(self.first)
            while self.sent < self.size:
                n = min(len(chunk), self.size - self.sent)
                self.sock.sendall(chunk[:n])
                self.sent += n
            self.sock.sendall(self.last)
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error = e


def read_until_end(sock, stop=None, timeout=30):
    """Reads without touching the socket's timeout (a writer thread shares it): returns
    (data, how) with how "eof", "reset" or "timeout". `stop(data)` may end it early."""
    data = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk
        if stop and stop(data):
            return data, "stopped"
    return data, "timeout"


class LingeringClose(unittest.TestCase):
    def test_raw_client_still_writing_reads_1009_then_eof(self):
        with Server(*SERVER_FLAGS, workers=1) as srv:
            for attempt in range(REPEATS):
                w = WS(srv.port)
                self.addCleanup(w.close)
                w.sock.settimeout(2)
                writer = Writer(w.sock, frame(0x1, length=BIG), BIG,
                                frame(0x8, struct.pack("!H", 1000)))
                writer.start()
                data, how = read_until_end(w.sock)
                frames, rest = parse_frames(w.buf + data)
                codes = [close_code(p) for _, op, p in frames if op == 0x8]
                self.assertEqual(codes, [1009], "attempt %d: close frames %r, then %s "
                                 "(writer: %d bytes sent, %r)"
                                 % (attempt, codes, how, writer.sent, writer.error))
                self.assertEqual(how, "eof", "attempt %d: after the Close: %s, not EOF"
                                 % (attempt, how))
                writer.join(30)
                self.assertFalse(writer.is_alive(), "attempt %d: writer stuck" % attempt)
                self.assertIsNone(writer.error, "attempt %d: the server reset the "
                                  "connection while the client was still writing "
                                  "(%d of %d bytes sent)" % (attempt, writer.sent, BIG))
                w.close()

    def test_npm_ws_sees_1009(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is not installed (Debian: apt-get install nodejs)")
        self.assertTrue(os.path.isdir(os.path.join(JS_DIR, "node_modules", "ws")),
                        "tests/js/node_modules is missing: run `npm ci` in tests/js "
                        "(CI must install it; this test does not skip)")
        with Server(*SERVER_FLAGS, workers=1) as srv:
            out = subprocess.run(
                [node, os.path.join(JS_DIR, "send_oversized.mjs"),
                 "ws://127.0.0.1:%d/ws" % srv.port, str(BIG), str(REPEATS)],
                capture_output=True, text=True, timeout=55)
            self.assertEqual(out.returncode, 0, out.stderr)
            codes = out.stdout.split()
            self.assertEqual(codes, ["1009"] * REPEATS,
                             "close codes npm ws observed for a 16 MiB message against "
                             "--max-message 1MiB: %s" % " ".join(codes))

    def http_error_while_writing(self, head, status, fill):
        with Server(*SERVER_FLAGS, workers=1) as srv:
            for attempt in range(5):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
                self.addCleanup(s.close)
                writer = Writer(s, head, 4 * MiB, fill=fill)
                writer.start()
                data, how = read_until_end(s)
                answers, rest = parse_responses(data)
                self.assertEqual([a[0] for a in answers], [status],
                                 "attempt %d: answers %r (%d bytes), then %s (writer: %r)"
                                 % (attempt, [a[0] for a in answers], len(data), how,
                                    writer.error))
                self.assertEqual(rest, b"", "attempt %d: bytes after the answer" % attempt)
                self.assertEqual(how, "eof", "attempt %d: after the %d answer: %s, not EOF"
                                 % (attempt, status, how))
                writer.join(30)
                self.assertIsNone(writer.error, "attempt %d: reset while the client was "
                                  "still writing (%d bytes sent)" % (attempt, writer.sent))
                s.close()

    def test_head_over_8k_431_while_writing(self):
        self.http_error_while_writing(b"GET /ws HTTP/1.1\r\nHost: t\r\nX-Big: ", 431, b"a")

    def test_bad_request_line_400_while_writing(self):
        self.http_error_while_writing(b"HELLO\r\n\r\n", 400, b"x")


if __name__ == "__main__":
    unittest.main()
