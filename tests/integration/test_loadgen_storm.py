"""tickwire-loadgen, scenario storm: the server restarts on the same port; every client
comes back (honouring the retry_ms hint of the 1001 Close, then exponential backoff with
full jitter while the port refuses), and the loadgen reports how long that took."""

import time

import lgtest


N = 200


def test_storm_restart():
    with lgtest.LogServer("--reconnect-spread", "1s", "--drain-timeout", "2s") as srv:
        proc, path = lgtest.loadgen(srv.port, "--connections", str(N), "--scenario", "storm",
                                    "--duration", "40s", "--backoff-cap", "2s", wait=False)
        time.sleep(1.5)
        srv.stop()  # SIGTERM: drain, Close 1001 {"retry_ms":R} to everyone
        time.sleep(1.0)
        srv.restart()
        out, err = proc.communicate(timeout=50)
        r, _, _ = lgtest.finish(proc.returncode, out, err, path)
        assert r["connections"]["established"] == N, r["connections"]
        s = r["storm"]
        assert s["drops"] == N, s
        assert r["reconnects"] == N, r
        assert s["all_back_ms"] is not None and s["all_back_ms"] < 30000, s
        assert s["peak_accept_per_s"] > 0, s
        assert r["closes"]["server_closes"] == N, r["closes"]
        assert r["failures"]["refused"] > 0  # some came back while the port was closed


if __name__ == "__main__":
    lgtest.run([test_storm_restart])
