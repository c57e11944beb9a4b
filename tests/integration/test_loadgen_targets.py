"""tickwire-loadgen with a target list (--target A,B): clients are spread round-robin
over the targets; in storm a client whose node dies reconnects to the next target and
resumes its topic there with since + epoch; market publishes through the first target and
subscribes on all of them. Two standalone servers, no broker."""

import os
import signal
import subprocess
import tempfile
import time

import lgtest

N = 200
TOPICS = 10
RATE = 400


def run_two(a, b, *args, wait=True):
    """lgtest.loadgen with --target A,B."""
    fd, path = tempfile.mkstemp(prefix="tw-lg-", suffix=".json")
    os.close(fd)
    cmd = [lgtest.LOADGEN, "--target", "127.0.0.1:%d,127.0.0.1:%d" % (a.port, b.port),
           "--json", path, *args]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True), path
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=50)
    return lgtest.finish(p.returncode, p.stdout, p.stderr, path)


def per_target(r, a, b):
    pt = r["connections"]["per_target"]
    assert [t["target"] for t in pt] == ["127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port], pt
    return pt


def test_storm_node_dies():
    with lgtest.LogServer() as a, lgtest.LogServer() as b:
        # --topics with no publisher: every client subscribes, and resumes after the move.
        proc, path = run_two(a, b, "--connections", str(N), "--scenario", "storm",
                             "--topics", str(TOPICS), "--publish-rate", "0",
                             "--duration", "30s", "--backoff-cap", "2s", wait=False)
        time.sleep(2.0)
        a.stop(signal.SIGKILL)
        out, err = proc.communicate(timeout=45)
        r, _, _ = lgtest.finish(proc.returncode, out, err, path)
        assert r["connections"]["established"] == N, r["connections"]
        pt = per_target(r, a, b)
        # Round-robin: half on each; then all of the dead node's clients on the survivor.
        assert pt[0]["established"] == N // 2, pt
        assert pt[0]["open"] == 0 and pt[0]["moved_in"] == 0, pt
        assert pt[1]["established"] == N, pt  # its own N/2, and N/2 moved in
        assert pt[1]["open"] == N and pt[1]["moved_in"] == N // 2, pt
        assert r["open_at_end"] == N, r["open_at_end"]
        assert r["reconnects"] == N // 2, r
        assert r["storm"]["drops"] == N // 2, r["storm"]
        assert r["storm"]["all_back_ms"] is not None, r["storm"]
        assert r["false_disconnects"] == 0, r
        # The resume carried the dead node's epoch: the survivor's topic is another
        # incarnation, so every resume is answered recovered:false (without the epoch,
        # since 0 would have been taken as the survivor's own seq 0 and 'recovered').
        res = r["resume"]
        assert res["resumes"] == N // 2 and res["unrecovered"] == N // 2, res
        assert r["pubsub"]["subscribed"] == N + N // 2, r["pubsub"]
        assert "per target" in out, out


def test_market_two_targets():
    # Without a cluster broker the second node's subscribers get nothing from the first
    # node's publishes: here only the spread and the first node's delivery are checked.
    # Cross-node delivery (and its loss and duplicates) is tested with the broker
    # (tests/integration/test_cluster.py runs the servers against a real redis-server).
    with lgtest.LogServer() as a, lgtest.LogServer() as b:
        r, out, _ = run_two(a, b, "--connections", str(N), "--scenario", "market",
                            "--topics", str(TOPICS), "--publish-rate", str(RATE),
                            "--payload", "64", "--duration", "3s")
        c = r["connections"]
        assert c["established"] == N and c["failed"] == 0, c
        pt = per_target(r, a, b)
        assert pt[0]["established"] == N // 2 and pt[1]["established"] == N // 2, pt
        assert pt[0]["open"] == N // 2 and pt[1]["open"] == N // 2, pt
        m = r["messages"]
        assert m["received"] > 0, m
        assert m["duplicates"] == 0 and m["gaps"] == 0 and m["lost"] == 0, m
        p = r["pubsub"]
        assert p["subscribed"] == N and p["errors"] == 0 and p["error_replies"] == 0, p
        assert p["acked"] > 0.5 * RATE * p["window_s"], p
        # Only the first node's N/2 subscribers receive: on average N / 2 / TOPICS per
        # message, never more than all N of them.
        assert p["acked"] * 0.25 * N / 2 / TOPICS <= m["received"] <= p["acked"] * N / 2, (m, p)
        assert r["latency_us"]["count"] == m["received"], r["latency_us"]
        assert "duplicates" in out, out


def test_single_target_report_unchanged():
    # One target: no per_target, no duplicates key (the report is as before the list).
    with lgtest.LogServer() as a:
        r, out, _ = lgtest.loadgen(a.port, "--connections", "20", "--scenario", "market",
                                   "--topics", "4", "--publish-rate", "100", "--duration", "2s")
        assert "per_target" not in r["connections"], r["connections"]
        assert "duplicates" not in r["messages"], r["messages"]
        assert "target 127.0.0.1:%d," % a.port in out, out


def test_bad_target_list():
    for bad in ("127.0.0.1:1,", ",127.0.0.1:1", "127.0.0.1:1,,127.0.0.1:2", "127.0.0.1:1,x"):
        p = subprocess.run([lgtest.LOADGEN, "--target", bad, "--connections", "1"],
                                  capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and "--target" in p.stderr, (bad, p.returncode, p.stderr)


if __name__ == "__main__":
    lgtest.run([test_storm_node_dies, test_market_two_targets,
                test_single_target_report_unchanged, test_bad_target_list])
