"""--max-connections-per-ip N (DESIGN 7, issue 9 item 8): an address may hold N
connections, on whatever workers they land; one more is answered 503 (limit counted,
then closed); other addresses are not affected; a closed connection frees its place."""
import socket
import unittest

from twtest import Server, WS, metrics, upgrade_request, read_response, wait_for


def upgrade_status(port, source):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    try:
        s.sendall(upgrade_request()[1])
        return read_response(s)[0]
    finally:
        s.close()


class PerIp(unittest.TestCase):
    def test_limit_per_address(self):
        with Server("--max-connections-per-ip", "3", workers=2) as srv:
            held = [WS(srv.port, source="127.0.0.2") for _ in range(3)]
            self.assertEqual(upgrade_status(srv.port, "127.0.0.2"), 503)
            # Another address has its own allowance.
            other = [WS(srv.port, source="127.0.0.3") for _ in range(3)]
            before = metrics(srv.port)["tickwire_limit_hits_total"]
            self.assertEqual(upgrade_status(srv.port, "127.0.0.3"), 503)
            self.assertGreater(metrics(srv.port)["tickwire_limit_hits_total"], before)
            # Closing one frees its place (once the server has seen the close).
            held.pop().close()
            self.assertTrue(wait_for(lambda: upgrade_status(srv.port, "127.0.0.2") == 101,
                                     timeout=5, step=0.1) is not False)
            for w in held + other:
                w.close()


if __name__ == "__main__":
    unittest.main()
