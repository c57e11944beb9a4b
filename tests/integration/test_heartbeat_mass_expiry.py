"""Thousands of heartbeats expiring in one tick (issue 9 item 15). For each dead connection
the server builds a linked SQE chain (install a regular fd to read the peer address for
the `detect` log line -> cancel -> close); `tw_ring_sqe` used to submit when the SQ was
full, which can split a chain across submissions exactly when many expire at once.

--workers 1 --tick 1s --ping-interval 1s --idle-timeout 2s and 5,000 silent WebSocket
clients (upgrade, then never send anything; reading does not matter to the server, the
kernel ACKs either way) connected within about a second, so their deadlines land in the
same tick or two, thousands of chains against a 1,024-entry ring. Checked:
- every client sees the server close it within idle + 3 s of its upgrade request;
- the server prints 5,000 `tickwire: detect peer=127.0.0.1:PORT ...` lines, each naming a
  client's real local port (not `?` or port 0), each client port exactly once, and counts
  5,000 heartbeat timeouts;
- afterwards a new client upgrades and gets a pong for an app ping, and the connections
  gauge returns to 1 (the /metrics scrape itself).
The test process needs 5,000 descriptors: RLIMIT_NOFILE is raised to the hard limit, and
the test fails (does not skip) when that is not enough."""
import collections
import re
import resource
import select
import socket
import time
import unittest

from twtest import Server, WS, metrics, upgrade_request, wait_for

CLIENTS = 5000
IDLE_S = 2.0
DETECT = re.compile(r"tickwire: detect peer=(\S+):(\S+) ")


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, 20000)), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class MassExpiry(unittest.TestCase):
    def test_5000_expire_in_one_tick(self):
        nofile = raise_nofile(CLIENTS + 200)
        self.assertGreaterEqual(nofile, CLIENTS + 200,
                                "RLIMIT_NOFILE %d is too low for %d clients" % (nofile, CLIENTS))
        with Server("--tick", "1s", "--ping-interval", "1s", "--idle-timeout", "2s",
                    workers=1) as srv:
            before = metrics(srv.port)["tickwire_heartbeat_timeouts_total"]
            socks, started, ports = [], {}, {}
            self.addCleanup(lambda: [s.close() for s in socks])
            t0 = time.time()
            for _ in range(CLIENTS):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                s.sendall(upgrade_request()[1])  # the last byte it will ever send
                started[s.fileno()] = time.time()
                ports[s.fileno()] = s.getsockname()[1]
                socks.append(s)
            connect_s = time.time() - t0
            ep = select.epoll()
            self.addCleanup(ep.close)
            by_fd = {}
            for s in socks:
                s.setblocking(False)
                ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
                by_fd[s.fileno()] = s
            first = collections.defaultdict(bytes)
            ended = {}
            deadline = time.time() + IDLE_S + 3 + 5  # wait longer, to report lateness
            while len(ended) < CLIENTS and time.time() < deadline:
                for fd, ev in ep.poll(0.2):
                    s = by_fd[fd]
                    closed = False
                    try:
                        while True:
                            chunk = s.recv(65536)
                            if not chunk:
                                closed = True
                                break
                            if len(first[fd]) < 12:
                                first[fd] += chunk[:12]
                    except BlockingIOError:
                        pass
                    except ConnectionResetError:
                        closed = True
                    if closed:
                        ended[fd] = time.time()
                        ep.unregister(fd)
            not_upgraded = [fd for fd in by_fd if not first[fd].startswith(b"HTTP/1.1 101")]
            self.assertEqual(not_upgraded, [], "%d clients were not upgraded" %
                             len(not_upgraded))
            detects = [l for l in list(srv.lines) if "detect peer=" in l]
            self.assertEqual(len(ended), CLIENTS, "%d of %d silent clients still open %.0f s "
                             "after their upgrade (connecting took %.1f s; %d detect lines, "
                             "%d naming no port)"
                             % (CLIENTS - len(ended), CLIENTS, IDLE_S + 8, connect_s,
                                len(detects), sum(1 for l in detects if ":0 " in l or "?" in l)))
            late = sorted(ended[fd] - started[fd] for fd in ended
                          if ended[fd] - started[fd] > IDLE_S + 3)
            self.assertEqual(late, [], "%d clients closed later than idle + 3 s, worst %.1f s"
                             % (len(late), late[-1] if late else 0))
            wait_for(lambda: sum(1 for l in srv.lines if DETECT.search(l)) >= CLIENTS, 5)
            peers = [DETECT.search(l).groups() for l in list(srv.lines) if DETECT.search(l)]
            self.assertEqual(len(peers), CLIENTS, "detect lines: %d" % len(peers))
            bad = [p for p in peers if p[0] != "127.0.0.1" or not p[1].isdigit() or
                   int(p[1]) == 0]
            self.assertEqual(bad, [], "%d detect lines without a real peer, e.g. %r"
                             % (len(bad), bad[:3]))
            seen = collections.Counter(int(p[1]) for p in peers)
            self.assertEqual(sorted(seen), sorted(ports.values()),
                             "detect lines do not name the clients' ports")
            self.assertEqual(max(seen.values()), 1, "a port logged twice")
            m = metrics(srv.port)
            self.assertEqual(m["tickwire_heartbeat_timeouts_total"] - before, CLIENTS)
            w = WS(srv.port)
            w.send_text('{"type":"ping","time":42}')
            self.assertEqual(w.recv_text(), '{"type":"pong","time":42}')
            w.close()
            for s in socks:
                s.close()
            gauge = wait_for(lambda: metrics(srv.port)["tickwire_connections"] <= 1, 5)
            self.assertTrue(gauge, "connections gauge: %r"
                            % metrics(srv.port)["tickwire_connections"])


if __name__ == "__main__":
    unittest.main()
