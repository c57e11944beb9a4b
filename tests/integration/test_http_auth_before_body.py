"""HTTP requests are judged from their head (DESIGN 6, issue 9 item 6).

Authorization is checked from the headers, before the body is read: with --publish-token,
a POST /publish announcing a 1 MiB body without the token (or with a wrong one) is answered
401 at once, without the client sending the body. Before the fix the server waited for and
buffered the body first: 1,000 such connections held 1 GiB for 90 s.

Keep-alive connections get the handshake deadline for each request head: with
--handshake-timeout 1s, after one answered request the server closes the connection within
2.5 s if no further complete request arrives, and a client trickling the next head one
byte every 100 ms is closed within the same bound (before: the 90 s idle timeout, extended
by every request). A client that sends its next requests promptly is served: the deadline
is per request, not per connection."""
import socket
import time
import unittest

from twtest import Server, parse_responses, peer_closed, read_response

BOUND_S = 2.5  # handshake timeout 1 s, plus generous slack for a loaded machine


def post_head(port, auth=""):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("POST /publish?topic=x HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
               "\r\nContent-Length: 1048576\r\n%s\r\n" % auth).encode())
    return s


def answered_keepalive(port):
    """A connection that has had one keep-alive request answered; (socket, answer time)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    st, _, body = read_response(s)
    assert (st, body) == (200, b"ok\n"), (st, body)
    return s, time.time()


def closed_at(s, limit, trickle=None):
    """When the server closed s (FIN or reset seen), or None if still open after `limit`
    seconds; with `trickle`, sends it one byte every 100 ms meanwhile."""
    t0 = time.time()
    i = 0
    while time.time() - t0 < limit:
        if peer_closed(s):
            return time.time()
        if trickle is not None:
            try:
                s.send(trickle[i % len(trickle):i % len(trickle) + 1])
            except OSError:
                return time.time()
            i += 1
        time.sleep(0.1 if trickle is not None else 0.02)
    return None


class AuthBeforeBody(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--publish-token", "sekrit", workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def check_401_without_body(self, auth):
        s = post_head(self.srv.port, auth)
        self.addCleanup(s.close)
        t0 = time.time()
        s.settimeout(2)
        try:
            data = b""
            while not parse_responses(data)[0]:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            self.fail("no answer within 2 s to a POST /publish head with a 1 MiB body to "
                      "come and %s: the server is waiting for the body" % (auth.strip() or
                                                                           "no token"))
        answers, _ = parse_responses(data)
        self.assertTrue(answers, "closed without an answer: %r" % data)
        self.assertEqual(answers[0][0], 401, answers[0])
        self.assertLess(time.time() - t0, 2)

    def test_no_token_401_before_body(self):
        self.check_401_without_body("")

    def test_wrong_token_401_before_body(self):
        self.check_401_without_body("Authorization: Bearer wrong\r\n")


class KeepAliveDeadline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--handshake-timeout", "1s", workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_checked()

    def test_idle_after_answer_is_closed(self):
        s, t0 = answered_keepalive(self.srv.port)
        self.addCleanup(s.close)
        at = closed_at(s, 6)
        self.assertIsNotNone(at, "an idle keep-alive connection was still open 6 s after "
                             "its answer (--handshake-timeout 1s)")
        self.assertLess(at - t0, BOUND_S, "closed %.2f s after the answer" % (at - t0))

    def test_trickled_next_head_is_closed(self):
        s, t0 = answered_keepalive(self.srv.port)
        self.addCleanup(s.close)
        head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 200
        at = closed_at(s, 6, trickle=head)
        self.assertIsNotNone(at, "a keep-alive connection trickling its next head one byte "
                             "every 100 ms was still open 6 s after its answer")
        self.assertLess(at - t0, BOUND_S, "closed %.2f s after the answer" % (at - t0))

    def test_prompt_requests_are_answered(self):
        s, t0 = answered_keepalive(self.srv.port)
        self.addCleanup(s.close)
        for i in range(5):  # 1.5 s in all: longer than one handshake timeout
            time.sleep(0.3)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            st, _, body = read_response(s)
            self.assertEqual((st, body), (200, b"ok\n"), "request %d after the first" % (i + 1))


if __name__ == "__main__":
    unittest.main()
