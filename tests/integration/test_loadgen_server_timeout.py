"""tickwire-loadgen --server-timeout: the client side of detection. A client that hears
nothing from the server for the timeout counts it dead, closes, and reports the verdicts
under "server_dead". A healthy server (its Pings, its pongs to the app pings) is never
judged dead; a frozen one (SIGSTOP: its kernel still ACKs, the process sends nothing, as
a server host that hangs) is judged dead by every client."""

import csv
import os
import signal
import tempfile
import time

import lgtest

N = 20


def test_healthy_server_is_never_dead():
    with lgtest.LogServer(*lgtest.HEARTBEAT) as srv:
        r, out, _ = lgtest.loadgen(srv.port, "--connections", str(N), "--scenario", "idle",
                                   "--duration", "4s", "--ping-interval", "300ms",
                                   "--server-timeout", "1500ms")
        assert r["connections"]["established"] == N, r["connections"]
        d = r["server_dead"]
        assert d["count"] == 0 and d["timeout_ms"] == 1500, d
        assert r["false_disconnects"] == 0, r
        assert r["start_unix_ms"] > 0, r
        assert "| server judged dead (--server-timeout 1500 ms) | 0," in out, out


def test_frozen_server_is_dead_for_every_client():
    fd, path = tempfile.mkstemp(prefix="tw-lg-", suffix=".csv")
    os.close(fd)
    with lgtest.LogServer(*lgtest.HEARTBEAT) as srv:
        p, report = lgtest.loadgen(srv.port, "--connections", str(N), "--scenario", "idle",
                                   "--duration", "6s", "--ping-interval", "300ms",
                                   "--server-timeout", "1500ms", "--csv", path, wait=False)
        try:
            time.sleep(2)
            srv.proc.send_signal(signal.SIGSTOP)
            stopped = time.time()
            out, err = p.communicate(timeout=30)
        finally:
            srv.proc.send_signal(signal.SIGCONT)
        r, _, _ = lgtest.finish(p.returncode, out, err, report)
    d = r["server_dead"]
    assert d["count"] == N, d
    # The verdict comes when the silence reaches the timeout, never before.
    assert d["min"] >= 1500, d
    assert r["false_disconnects"] == 0, r
    with open(path) as f:
        rows = [row for row in csv.DictReader(f) if row["event"] == "server_dead"]
    os.unlink(path)
    assert len(rows) == N, rows
    # Run clock + start_unix_ms is wall-clock time: every verdict after the freeze.
    assert all(r["start_unix_ms"] + float(x["t_ms"]) >= stopped * 1000 - 50 for x in rows)


if __name__ == "__main__":
    lgtest.run([test_healthy_server_is_never_dead, test_frozen_server_is_dead_for_every_client])
