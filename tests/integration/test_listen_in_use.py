"""A listen address already in use by another process is an error (DESIGN 7, issue 9 item
13), even though a server's own workers share their address with SO_REUSEPORT. Before the
fix a second tickwire on the port of a running one started silently and the kernel split
new connections between two servers with separate topics and seqs.

- a second tickwire on the address of a running one (two workers each) exits with status
  2 and one stderr line naming the address; the first one keeps every new connection;
- the same when the address is held by another program's SO_REUSEPORT listener."""
import socket
import subprocess
import unittest

import twtest
from twtest import Server, get, metrics


def start_second(port):
    """Runs tickwire on 127.0.0.1:port: (exit status or None if still running, stderr)."""
    addr = "127.0.0.1:%d" % port
    proc = subprocess.Popen([twtest.BIN, "--listen", addr, "--workers", "2"],
                            stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=5)
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return None, err


class ListenInUse(unittest.TestCase):
    def check_refused(self, port):
        code, err = start_second(port)
        lines = err.strip().splitlines()
        self.assertIsNotNone(code, "a second server on 127.0.0.1:%d was still running after "
                             "5 s; its stderr: %r" % (port, lines))
        self.assertEqual(code, 2, lines)
        self.assertEqual(len(lines), 1, "want one clear line: %r" % lines)
        self.assertIn("127.0.0.1:%d" % port, lines[0])

    def test_second_tickwire_on_same_address_exits_2(self):
        with Server(workers=2) as first:
            self.check_refused(first.port)
            before = metrics(first.port)["tickwire_connections_accepted_total"]
            for _ in range(20):
                self.assertEqual(get(first.port, "/healthz")[0], 200)
            after = metrics(first.port)["tickwire_connections_accepted_total"]
            self.assertEqual(after - before, 21, "connections went elsewhere")

    def test_address_held_by_another_reuseport_listener_exits_2(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        self.check_refused(s.getsockname()[1])


if __name__ == "__main__":
    unittest.main()
