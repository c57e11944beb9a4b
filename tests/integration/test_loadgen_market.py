"""tickwire-loadgen, scenario market: subscribers over Zipf-popular topics, publishers
paced at --publish-rate through POST /publish (or WebSocket publish). Every subscriber
sees its topic's seqs without a gap, end-to-end latency comes from the timestamp in the
payload, and the DESIGN 7 report fields are all there."""

import lgtest

N = 200
TOPICS = 20
RATE = 500


def check(r, n=N):
    c = r["connections"]
    assert c["established"] == n and c["failed"] == 0, c
    m = r["messages"]
    for k in ("received", "per_s", "gaps", "lost"):
        assert k in m, m
    assert m["received"] > 0, m
    assert m["gaps"] == 0 and m["lost"] == 0, m
    lat = r["latency_us"]
    for k in ("p50", "p90", "p99", "p999", "max"):
        assert k in lat, lat
    assert lat["kind"] == "end_to_end", lat
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"], lat
    assert lat["count"] == m["received"], (lat, m)
    p = r["pubsub"]
    assert p["subscribed"] == n, p
    assert p["errors"] == 0 and p["error_replies"] == 0, p
    assert p["acked"] > 0.8 * RATE * p["window_s"] * 0.9, p
    # Each message reached every subscriber of its topic: on average N / TOPICS of them.
    assert m["received"] >= p["acked"] * 0.5 * N / TOPICS, (m, p)
    assert r["false_disconnects"] == 0, r
    return r


def test_market_http():
    with lgtest.LogServer() as srv:
        r, _, _ = lgtest.loadgen(srv.port, "--connections", str(N), "--scenario", "market",
                                 "--topics", str(TOPICS), "--publish-rate", str(RATE),
                                 "--payload", "128", "--duration", "3s")
        check(r)
        assert r["pubsub"]["via"] == "http"


def test_market_ws_split_messages():
    # 3000-byte values: messages span receive buffers, seq and t come from the head.
    with lgtest.LogServer() as srv:
        r, _, _ = lgtest.loadgen(srv.port, "--connections", str(N), "--scenario", "market",
                                 "--topics", str(TOPICS), "--publish-rate", str(RATE),
                                 "--publishers", "2", "--publish-via", "ws", "--payload",
                                 "3000", "--burst", "4", "--duration", "3s")
        check(r)
        assert r["pubsub"]["via"] == "ws"


if __name__ == "__main__":
    lgtest.run([test_market_http, test_market_ws_split_messages])
