#!/usr/bin/env python3
"""Small stdlib WebSocket client for bench/cluster/run.sh (tickwire cluster benchmarks).

  twclient.py latency --pub H:P --sub H:P[,H:P...] [--subs 10] [--rate 1000] [--seconds 10]
      One publisher connection (WebSocket publish) on --pub, --subs subscribers of one
      topic spread round robin over the --sub nodes. Open loop at --rate msgs/s; each
      64-byte data carries the publisher's CLOCK_MONOTONIC ns; latency = receive time - it
      (same process, same clock). Prints p50/p90/p99/p99.9/max in µs, and checks that every
      subscriber saw every message with seq +1 (gaps, duplicates, missing).

  twclient.py throughput --target H:P [--conns 4] [--window 512] [--topics 1] [--seconds 5]
      [--pids redis=PID,tickwire=PID]
      --conns pipelining publishers, each keeping up to --window publishes outstanding;
      counts `published` replies per second and the CPU % of the given processes
      (/proc/PID/stat utime+stime) over the measured window, and this client's own CPU.

Client frames are masked with an all-zero key (legal; the payload stays as is).
"""
import argparse, os, selectors, socket, struct, sys, time

CLK = os.sysconf("SC_CLK_TCK")


def hostport(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        hdr = bytes([0x81, 0x80 | n])
    elif n < 65536:
        hdr = bytes([0x81, 0x80 | 126]) + struct.pack("!H", n)
    else:
        hdr = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", n)
    return hdr + b"\0\0\0\0" + payload


def connect(target):
    s = socket.create_connection(hostport(target))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    h, p = hostport(target)
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: {h}:{p}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise SystemExit(f"twclient: {target} closed during the upgrade")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"twclient: upgrade refused by {target}: {head[:60]!r}")
    return s, rest


class Reader:
    """Splits server frames (unmasked). Answers Pings. Yields text payloads."""

    def __init__(self, sock, rest=b""):
        self.s, self.buf = sock, bytearray(rest)

    def feed(self):
        d = self.s.recv(1 << 18)
        if not d:
            raise EOFError
        self.buf += d
        return self.frames()

    def frames(self):
        out, b, i, n = [], self.buf, 0, len(self.buf)
        while n - i >= 2:
            op, ln = b[i] & 0x0F, b[i + 1] & 0x7F
            j = i + 2
            if ln == 126:
                if n - j < 2:
                    break
                ln = (b[j] << 8) | b[j + 1]
                j += 2
            elif ln == 127:
                if n - j < 8:
                    break
                ln = int.from_bytes(b[j:j + 8], "big")
                j += 8
            if n - j < ln:
                break
            p = bytes(b[j:j + ln])
            i = j + ln
            if op == 1:
                out.append(p)
            elif op == 9:
                self.s.sendall(bytes([0x8A, 0x80 | len(p)]) + b"\0\0\0\0" + p)
            elif op == 8:
                raise EOFError("close frame %r" % p[:40])
        del b[:i]
        return out


def num_after(p, key):
    k = p.find(key)
    if k < 0:
        return None
    k += len(key)
    e = k
    while e < len(p) and 48 <= p[e] <= 57:
        e += 1
    return int(p[k:e])


def pct(sorted_v, q):
    if not sorted_v:
        return float("nan")
    return sorted_v[min(len(sorted_v) - 1, int(q / 100.0 * len(sorted_v)))]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    fl = st[st.rindex(")") + 2:].split()
    return int(fl[11]) + int(fl[12])


def latency(a):
    topic = a.topic.encode()
    subs_t = a.sub.split(",")
    sel = selectors.DefaultSelector()
    subs = []
    for i in range(a.subs):
        s, rest = connect(subs_t[i % len(subs_t)])
        s.sendall(frame(b'{"type":"subscribe","topic":"' + topic + b'"}'))
        r = Reader(s, rest)
        r.idx, r.ready, r.last, r.got, r.gaps, r.dups, r.lat = i, False, None, 0, 0, 0, []
        subs.append(r)
        sel.register(s, selectors.EVENT_READ, r)
    ps, prest = connect(a.pub)
    pr = Reader(ps, prest)
    pr.idx = -1
    pr.pubok = pr.errors = 0
    sel.register(ps, selectors.EVENT_READ, pr)
    errors = []
    t0 = time.monotonic()
    while not all(r.ready for r in subs):
        if time.monotonic() - t0 > 20:
            raise SystemExit("twclient: subscribers not ready after 20 s")
        for key, _ in sel.select(0.1):
            r = key.data
            for p in r.feed():
                if b'"subscribed"' in p:
                    r.ready = True
                elif b'"error"' in p or b'"resync"' in p:
                    errors.append(p)
    warm = 1.0
    interval = 1.0 / a.rate
    start = time.monotonic_ns()
    t_end_pub = start + int((warm + a.seconds) * 1e9)
    t_meas = start + int(warm * 1e9)
    next_ns = start
    sent = sent_meas = 0
    first_meas_seq = None  # the first seq published in the measured window, by its reply
    pad = b"x" * 32
    done_pub = False
    drain_until = None
    while True:
        now = time.monotonic_ns()
        if not done_pub:
            burst = []
            while next_ns <= now and next_ns < t_end_pub:
                ts = time.monotonic_ns()
                meas = 1 if ts >= t_meas else 0
                # data: {"t":<19 digits>,"m":0|1,"p":"<26 x>"}: 64 bytes
                data = b'{"t":%d,"m":%d,"p":"%s"}' % (ts + 10**18, meas, pad[:26])
                burst.append(frame(b'{"type":"publish","topic":"' + topic + b'","data":' + data + b"}"))
                sent += 1
                sent_meas += meas
                next_ns += int(interval * 1e9)
            if burst:
                ps.sendall(b"".join(burst))
            if next_ns >= t_end_pub:
                done_pub = True
                drain_until = time.monotonic() + 2.0
            timeout = max(0.0, (next_ns - time.monotonic_ns()) / 1e9) if not done_pub else 0.05
        else:
            timeout = 0.05
            if time.monotonic() > drain_until or (pr.pubok == sent and all(r.got == sent for r in subs)):
                break
        for key, _ in sel.select(timeout):
            r = key.data
            try:
                ps_ = r.feed()
            except EOFError as e:
                raise SystemExit(f"twclient: connection {r.idx} closed by the server ({e})")
            rt = time.monotonic_ns()
            for p in ps_:
                if r.idx < 0:
                    if b'"published"' in p:
                        pr.pubok += 1
                    else:
                        pr.errors += 1
                        errors.append(p)
                    continue
                if not p.startswith(b'{"type":"message"'):
                    errors.append(p)
                    continue
                seq = num_after(p, b'"seq":')
                if r.last is not None:
                    if seq <= r.last:
                        r.dups += 1
                    elif seq != r.last + 1:
                        r.gaps += seq - r.last - 1
                r.last = seq
                r.got += 1
                if b'"m":1' in p:
                    r.lat.append((rt - (num_after(p, b'"t":') - 10**18)) / 1000.0)
    lat = sorted(x for r in subs for x in r.lat)
    missing = sum(sent - r.got for r in subs)
    print(f"published {sent} ({sent_meas} timed, after {warm:.0f} s of warm-up), "
          f"acknowledged {pr.pubok}, publish errors {pr.errors}")
    print(f"deliveries {sum(r.got for r in subs)} of {sent * len(subs)} expected; "
          f"missing {missing}, seq gaps {sum(r.gaps for r in subs)}, duplicates {sum(r.dups for r in subs)}")
    if errors:
        print(f"other frames received: {len(errors)}, first: {errors[0][:200]!r}")
    print("RESULT n=%d p50=%.0f p90=%.0f p99=%.0f p999=%.0f max=%.0f" % (
        len(lat), pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 99.9), lat[-1] if lat else float("nan")))


def throughput(a):
    sel = selectors.DefaultSelector()
    conns = []
    pad = b"x" * 32
    for k in range(a.conns):
        s, rest = connect(a.target)
        s.setblocking(False)
        fr = []
        for j in range(a.batch):
            t = b"cb.%d" % ((k * a.batch + j) % a.topics)
            fr.append(frame(b'{"type":"publish","topic":"' + t + b'","data":{"t":1000000000000000000,"p":"'
                            + pad + b'"}}'))
        c = type("C", (), {})()
        c.s, c.batch, c.sent, c.ok, c.err, c.tail, c.firsterr = s, b"".join(fr), 0, 0, 0, bytes(rest), None
        c.out = bytearray()
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    pat, epat = b'"type":"published"', b'"type":"error"'
    pids = {}
    if a.pids:
        for kv in a.pids.split(","):
            n, p = kv.split("=")
            pids[n] = int(p)

    def total():
        return sum(c.ok for c in conns)

    t0 = time.monotonic()
    warm_end, end = t0 + 1.0, t0 + 1.0 + a.seconds
    base = None
    persec = []
    last_s, last_n = None, 0
    while True:
        now = time.monotonic()
        if base is None and now >= warm_end:
            base = (now, total(), {n: cpu_ticks(p) for n, p in pids.items()}, os.times())
            last_s, last_n = now, total()
        if base is not None and now - last_s >= 1.0:
            persec.append((total() - last_n) / (now - last_s))
            last_s, last_n = now, total()
        if now >= end:
            fin = (now, total(), {n: cpu_ticks(p) for n, p in pids.items()}, os.times())
            break
        for c in conns:
            if c.sent - c.ok - c.err <= a.window - a.batch and not c.out:
                c.out += c.batch
                c.sent += a.batch
            if c.out:
                try:
                    n = c.s.send(c.out)
                    del c.out[:n]
                except BlockingIOError:
                    pass
        for key, _ in sel.select(0.001):
            c = key.data
            try:
                d = c.s.recv(1 << 18)
            except BlockingIOError:
                continue
            if not d:
                raise SystemExit("twclient: a publisher was closed by the server")
            w = c.tail + d
            c.ok += w.count(pat)
            ne = w.count(epat)
            if ne:
                c.err += ne
                if c.firsterr is None:
                    i = w.find(epat)
                    c.firsterr = w[max(0, i - 2):i + 150]
            c.tail = w[-(len(pat) - 1):]
    el = fin[0] - base[0]
    rate = (fin[1] - base[1]) / el
    print(f"publishers {a.conns}, window {a.window} outstanding each, batches of {a.batch}, "
          f"topics {a.topics}, measured {el:.1f} s after 1 s warm-up")
    print("per-second published/s: " + " ".join(f"{x:,.0f}" for x in persec))
    errs = sum(c.err for c in conns)
    if errs:
        print(f"error replies: {errs}, first: {next(c.firsterr for c in conns if c.firsterr)!r}")
    cpus = []
    for n in pids:
        cpus.append(f"{n}_cpu={(fin[2][n] - base[2][n]) / CLK / el * 100:.0f}")
    me = (fin[3].user + fin[3].system - base[3].user - base[3].system) / el * 100
    print(f"RESULT published_per_s={rate:.0f} errors={errs} " + " ".join(cpus) + f" client_cpu={me:.0f}")


def main():
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    l = sp.add_parser("latency")
    l.add_argument("--pub", required=True)
    l.add_argument("--sub", required=True)
    l.add_argument("--subs", type=int, default=10)
    l.add_argument("--rate", type=float, default=1000)
    l.add_argument("--seconds", type=float, default=10)
    l.add_argument("--topic", default="lat.1")
    t = sp.add_parser("throughput")
    t.add_argument("--target", required=True)
    t.add_argument("--conns", type=int, default=4)
    t.add_argument("--window", type=int, default=512)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--topics", type=int, default=1)
    t.add_argument("--seconds", type=float, default=5)
    t.add_argument("--pids", default="")
    a = ap.parse_args()
    latency(a) if a.cmd == "latency" else throughput(a)


if __name__ == "__main__":
    main()
