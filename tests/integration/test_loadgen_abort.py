"""tickwire-loadgen, scenarios abort (RST through SO_LINGER 0) and graceful (Close 1000,
wait for the echo): the server's tickwire_connections gauge must come back to its
baseline, and the loadgen reports how fast."""

import lgtest
import twtest

N = 300


def out_rsts():
    """The host's TcpOutRsts (system-wide: other traffic can only add to a delta)."""
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Tcp:")]
    return int(rows[1][rows[0].index("OutRsts")])


def run(scenario):
    with lgtest.LogServer(*lgtest.HEARTBEAT) as srv:
        rsts = out_rsts()
        base = twtest.metrics(srv.port)["tickwire_connections"]
        r, _, _ = lgtest.loadgen(srv.port, "--connections", str(N), "--scenario", scenario,
                                 "--silent-at", "1s", "--duration", "15s")
        c = r["connections"]
        assert c["established"] == N and c["failed"] == 0, c
        g = r["gauge"]
        assert g["available"] and g["returned"], g
        assert g["baseline"] == base and g["final"] == base, (g, base)
        assert 0 <= g["return_ms"] < 5000, g
        assert r["false_disconnects"] == 0, r
        # Nothing left behind on the server after the loadgen has gone.
        assert twtest.wait_for(
            lambda: twtest.metrics(srv.port)["tickwire_connections"] == base, 5)
        return r, twtest.metrics(srv.port), out_rsts() - rsts


def test_abort():
    r, m, rsts = run("abort")
    assert r["closes"]["aborted"] == N, r["closes"]
    assert rsts >= N, rsts
    # RSTs, not close handshakes: the server saw no Close frame at all.
    assert m['tickwire_closes_total{code="1000"}'] == 0, m


def test_graceful():
    r, m, _ = run("graceful")
    cl = r["closes"]
    assert cl["sent"] == N and cl["echoes"] == N and cl["timeouts"] == 0, cl
    assert m['tickwire_closes_total{code="1000"}'] == N, m


if __name__ == "__main__":
    lgtest.run([test_abort, test_graceful])
