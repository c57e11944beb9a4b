"""tickwire-loadgen, scenario slow: some subscribers stop reading at --silent-at (recv
cancelled, socket kept, app pings go on) and read again at --resume-at. The fast ones
must lose nothing; the slow ones find a seq jump (conflate) or a closed session
(disconnect: Close 1013, or the TCP close when the Close is stuck behind the backlog);
the server's RSS is sampled through --server-pid.

The slow clients' topic carries ~2 MB/s: the server's kernel send buffer (tcp_wmem max,
4 MiB here) absorbs the first seconds before --max-queue engages."""

import lgtest

N = 50
SLOW = 10  # 0.2 of N


def run(policy, *flags):
    with lgtest.LogServer("--max-queue", "64KiB", "--slow-consumer", policy, *flags) as srv:
        r, _, _ = lgtest.loadgen(
            srv.port, "--connections", str(N), "--scenario", "slow", "--topics", "2",
            "--publish-rate", "2000", "--payload", "2000", "--silent-at", "1s",
            "--resume-at", "5s", "--duration", "7s", "--slow-fraction", "0.2",
            "--server-pid", str(srv.proc.pid))
        c = r["connections"]
        assert c["established"] == N and c["failed"] == 0, c
        m = r["messages"]
        assert m["received"] > 0 and m["gaps"] == 0 and m["lost"] == 0, m
        s = r["slow"]
        assert s["clients"] == SLOW and s["paused"] == SLOW and s["resumed"] == SLOW, s
        assert s["server_rss_max_kib"] > 0 and len(s["server_rss_kib"]) >= 5, s
        assert r["false_disconnects"] == 0, r
        return s


def test_slow_conflate():
    s = run("conflate")
    assert s["jumps"] >= SLOW and s["lost"] > 0, s
    assert s["closed_1013"] == 0 and s["dropped"] == 0, s


def test_slow_disconnect():
    s = run("disconnect")
    assert s["closed_1013"] + s["dropped"] == SLOW, s


def test_slow_disconnect_delivers_the_close():
    # A close timeout longer than the pause: the server waits for the paused readers to
    # take what was queued, so each one reads its Close 1013 (and then the FIN, which is
    # the end of that close, not a drop).
    s = run("disconnect", "--close-timeout", "10s")
    assert s["closed_1013"] == SLOW and s["dropped"] == 0, s


if __name__ == "__main__":
    lgtest.run([test_slow_conflate, test_slow_disconnect, test_slow_disconnect_delivers_the_close])
