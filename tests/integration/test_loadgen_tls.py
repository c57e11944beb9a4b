"""tickwire-loadgen --tls: wolfSSL over the ring (memory I/O, ciphertext through the same
send/recv path as plain bytes) against the server's TLS listener, with a certificate made
by openssl at test time: idle, silent (app), market; verification with --ca and --sni."""

import lgtest
import tlstest

N = 200


def test_tls_idle_verified():
    with tlstest.TLSServer() as srv:
        r, _, _ = lgtest.loadgen(srv.tls_port, "--tls", "--ca", srv.cert, "--sni", "localhost",
                                 "--connections", str(N), "--duration", "2s")
        assert r["tls"] is True
        c = r["connections"]
        assert c["established"] == N and c["failed"] == 0, c
        assert r["false_disconnects"] == 0, r


def test_tls_wrong_name_refused():
    with tlstest.TLSServer() as srv:
        r, _, _ = lgtest.loadgen(srv.tls_port, "--tls", "--ca", srv.cert, "--sni", "example.org",
                                 "--connections", "10", "--duration", "2s")
        assert r["connections"]["established"] == 0, r["connections"]
        assert r["failures"]["protocol"] == 10, r["failures"]


def test_tls_silent_app():
    with tlstest.TLSServer(*lgtest.HEARTBEAT) as srv:
        r, _, _ = lgtest.loadgen(srv.tls_port, "--tls", "--insecure", "--connections", str(N),
                                 "--scenario", "silent", "--silent-fraction", "0.1",
                                 "--silent-at", "1s", "--duration", "15s",
                                 "--server-ping-interval", "1s", "--server-idle-timeout", "3s")
        c = r["connections"]
        assert c["established"] == N and c["failed"] == 0, c
        d = r["detection_ms"]
        assert d["count"] == N // 10 and d["outside"] == 0, d
        assert r["false_disconnects"] == 0, r


def test_tls_market():
    with tlstest.TLSServer() as srv:
        r, _, _ = lgtest.loadgen(srv.tls_port, "--tls", "--insecure", "--connections", str(N),
                                 "--scenario", "market", "--topics", "10", "--publish-rate",
                                 "500", "--duration", "3s")
        m = r["messages"]
        assert m["received"] > 0 and m["gaps"] == 0, m
        assert r["latency_us"]["p99"] > 0, r["latency_us"]


if __name__ == "__main__":
    lgtest.run([test_tls_idle_verified, test_tls_wrong_name_refused, test_tls_silent_app,
                test_tls_market])
