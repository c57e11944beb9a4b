"""tickwire-loadgen, scenario idle: hundreds of clients connect through one process's
rings, answer the server's Pings, send app pings, and hold; nobody is dropped, and the
server's gauge goes back to its baseline once the loadgen exits."""

import subprocess

import lgtest
import twtest

N = 400


def test_idle_all_connect_and_heartbeat():
    with lgtest.LogServer(*lgtest.HEARTBEAT) as srv:
        base = twtest.metrics(srv.port)["tickwire_connections"]
        r, out, _ = lgtest.loadgen(srv.port, "--connections", str(N), "--scenario", "idle",
                                   "--duration", "5s", "--ping-interval", "2s",
                                   "--sources", "127.0.0.1-127.0.0.4", "--threads", "2")
        c = r["connections"]
        assert c["target"] == N and c["established"] == N and c["failed"] == 0, c
        assert c["rate_per_s"] > 0, c
        assert r["false_disconnects"] == 0, r
        assert r["reconnects"] == 0, r
        hb = r["heartbeat"]
        # App pings every 2 s leave 1 s quiet gaps: the server (1 s interval) pings too,
        # and every Ping is answered.
        assert hb["pings_received"] >= N and hb["pongs_sent"] == hb["pings_received"], hb
        assert r["latency_us"]["p50"] > 0 and r["latency_samples"] >= N, r
        assert r["messages"]["received"] >= N, r["messages"]
        for key in ("p50", "p90", "p99", "p999", "max"):
            assert key in r["latency_us"]
        for key in ("count", "min", "p50", "p90", "p99", "max", "expected_min",
                    "expected_max", "outside"):
            assert key in r["detection_ms"]
        assert "| connections established | %d / %d |" % (N, N) in out
        # The loadgen is gone: its sockets closed, the server counts them out.
        assert twtest.wait_for(
            lambda: twtest.metrics(srv.port)["tickwire_connections"] == base, 10), \
            twtest.metrics(srv.port)["tickwire_connections"]
        assert not any("detect peer=" in l for l in srv.lines())


def test_cli_help_and_bad_flags():
    p = subprocess.run([lgtest.LOADGEN, "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    for flag in ("--target", "--connections", "--sources", "--connect-rate", "--threads",
                 "--scenario", "--duration", "--ping-interval", "--silent-fraction",
                 "--silent-at", "--silence", "--no-pong", "--no-app-ping", "--no-jitter",
                 "--server-log", "--server-ping-interval", "--server-idle-timeout",
                 "--server-tick", "--json", "--csv", "--topics", "--publish-rate",
                 "--payload", "--tls"):
        assert flag in p.stdout, flag
    for bad, name in ((["--connections", "lots"], "--connections"),
                      (["--silence", "loud"], "--silence"),
                      (["--frobnicate"], "--frobnicate"),
                      (["--duration", "5 parsecs"], "--duration")):
        p = subprocess.run([lgtest.LOADGEN, *bad], capture_output=True, text=True)
        assert p.returncode == 2, (bad, p.returncode)
        assert name in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_refused_is_counted_not_fatal():
    # Nothing listens on this port: every attempt fails as 'refused' and the run ends.
    port = twtest.socket.socket()
    port.bind(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()
    r, _, _ = lgtest.loadgen(free, "--connections", "50", "--duration", "2s")
    assert r["connections"]["established"] == 0
    assert r["connections"]["failed"] == 50
    assert r["failures"]["refused"] == 50, r["failures"]


if __name__ == "__main__":
    lgtest.run([test_idle_all_connect_and_heartbeat, test_cli_help_and_bad_flags,
                test_refused_is_counted_not_fatal])
