"""--max-connections bounds every connection, not only upgrades (issue 9 item 7). With
--max-connections 100 and one worker, 100 WebSocket sessions fill the limit; then:
- an upgrade over the limit is answered 503;
- 200 more connections each send a keep-alive GET /healthz: each gets at most one answer
  and is then closed, so that 2 s later at most 64 of them (the per-worker reserve for
  /metrics and /healthz) are still open. Before the fix all 200 were answered and held.
- a fresh /healthz is still answered afterwards (monitoring keeps working at the limit)."""
import socket
import time
import unittest

from twtest import Server, WS, get, http, parse_responses, peer_closed, upgrade_request

LIMIT, EXTRA, RESERVE = 100, 200, 64


def drain_now(s):
    """Whatever s has to read right now, without waiting."""
    data = b""
    s.setblocking(False)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (BlockingIOError, ConnectionResetError):
        pass
    return data


class MaxConnectionsAll(unittest.TestCase):
    def test_limit_bounds_keepalive_http_too(self):
        with Server("--max-connections", str(LIMIT), workers=1) as srv:
            sessions = [WS(srv.port) for _ in range(LIMIT)]
            for w in sessions:
                self.addCleanup(w.close)
            self.assertEqual(http(srv.port, upgrade_request()[1])[0], 503)
            extra = []
            for _ in range(EXTRA):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                self.addCleanup(s.close)
                try:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                except OSError:
                    pass  # closed before it could ask: fine, peer_closed() sees it
                extra.append(s)
            time.sleep(2)
            still_open = 0
            for i, s in enumerate(extra):
                closed = peer_closed(s)
                answers, rest = parse_responses(drain_now(s))
                self.assertLessEqual(len(answers), 1, "connection %d: %d answers" %
                                     (i, len(answers)))
                self.assertTrue(all(a[0] in (200, 503) for a in answers), answers)
                if not closed:
                    still_open += 1
            self.assertLessEqual(still_open, RESERVE,
                                 "%d of %d keep-alive connections over --max-connections %d "
                                 "still open after 2 s" % (still_open, EXTRA, LIMIT))
            for s in extra:
                s.close()
            self.assertEqual(http(srv.port, upgrade_request()[1])[0], 503)
            self.assertEqual(get(srv.port, "/healthz")[0], 200)
            for w in sessions:
                w.close()


if __name__ == "__main__":
    unittest.main()
