"""--max-queue must bound a connection's queued output in every state, not only once it is
a WebSocket session. An HTTP keep-alive client that pipelines requests and never reads the
answers makes the server queue every response: /metrics answers ~5 KB to a 36-byte request,
so one client can grow the server by hundreds of MB (DESIGN: "Server memory must stay
bounded no matter how many clients stop reading")."""
import socket
import time
import unittest

from twtest import Server

REQ = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
COUNT = 20000  # ~100 MB of answers if all are queued


class HttpQueueBound(unittest.TestCase):
    def test_pipelined_requests_without_reading_stay_bounded(self):
        with Server("--max-queue", "64KiB", workers=1) as srv:
            rss0 = srv.rss_kib()
            s = socket.create_connection(("127.0.0.1", srv.port))
            self.addCleanup(s.close)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            data = REQ * COUNT
            off = 0
            deadline = time.time() + 10
            while off < len(data) and time.time() < deadline:
                try:
                    off += s.send(data[off:off + 65536])
                except BlockingIOError:
                    time.sleep(0.01)  # the server applies back-pressure: fine
                except OSError:
                    break  # the server closed us: also fine
            time.sleep(1.5)
            grown_mib = (srv.rss_kib() - rss0) / 1024
            self.assertLess(grown_mib, 48,
                            "server RSS grew %.0f MiB for one client that does not read "
                            "(--max-queue 64KiB); %d requests accepted" % (grown_mib,
                                                                       off // len(REQ)))


if __name__ == "__main__":
    unittest.main()
