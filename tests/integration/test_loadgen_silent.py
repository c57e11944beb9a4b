"""tickwire-loadgen, scenario silent: at --silent-at a fraction of clients stop talking
(app: their kernel still ACKs; power: a BPF filter drops every packet, a true half-open
connection). Every silent client must be detected by the server within DESIGN 8's window
[idle - ping, idle + tick + 50 ms], and no healthy client may be dropped."""

import lgtest
import twtest

N = 300
SILENT = 60  # 0.2 of N


def run(mode):
    with lgtest.LogServer(*lgtest.HEARTBEAT) as srv:
        before = twtest.metrics(srv.port)
        r, out, _ = lgtest.loadgen(
            srv.port, "--connections", str(N), "--scenario", "silent", "--silence", mode,
            "--silent-fraction", "0.2", "--silent-at", "1s", "--duration", "20s",
            "--server-log", srv.log, "--server-tick", "10ms")
        after = twtest.metrics(srv.port)
        c = r["connections"]
        assert c["established"] == N and c["failed"] == 0, c
        d = r["detection_ms"]
        # The window comes from the server's own 'listening' line: 1 s / 3 s.
        assert d["expected_min"] == 2000 and d["expected_max"] == 3060, d
        assert r["detection"]["silent"] == SILENT, r["detection"]
        assert d["count"] == SILENT, d
        assert d["outside"] == 0, d
        assert d["expected_min"] <= d["min"] <= d["max"] <= d["expected_max"], d
        assert r["false_disconnects"] == 0, r
        # The server agrees: exactly the silent ones timed out.
        timeouts = (after["tickwire_heartbeat_timeouts_total"]
                    - before["tickwire_heartbeat_timeouts_total"])
        assert timeouts == SILENT, timeouts
        assert r["detection"]["server_count"] == SILENT, r["detection"]
        return r


def test_silent_app():
    r = run("app")
    assert r["detection"]["source"] == "client"


def test_silent_power():
    r = run("power")
    # Power: the client cannot see the server give up; the figures come from the
    # server's detect lines, matched by the clients' local ports.
    assert r["detection"]["source"] == "server_log", r["detection"]
    assert r["detection"]["unmatched_detect_lines"] == 0, r["detection"]


if __name__ == "__main__":
    lgtest.run([test_silent_app, test_silent_power])
