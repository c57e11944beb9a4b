"""Helpers for tickwire integration tests: start the real server on a free loopback port,
speak raw HTTP and WebSocket bytes to it, read its metrics. Standard library only."""

import base64
import ctypes
import hashlib
import os
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time

BIN = os.environ.get("TICKWIRE_BIN", "build/tickwire")
# Under ASan+UBSan: RSS figures mean nothing (quarantine), but a leak or UB report makes
# the server exit non-zero, which every test then catches.
SANITIZED = os.environ.get("TICKWIRE_SANITIZED") == "1"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Server:
    """The tickwire binary on 127.0.0.1:<free port>; stderr lines are kept in .lines.

    .port is the first listener (the plain 127.0.0.1:0 added here); .ports lists every
    listener's port in command-line order and .tls_ports those of --tls-listen entries
    (.tls_port is the first of them, or None)."""

    def __init__(self, *args, workers=2):
        cmd = [BIN, "--listen", "127.0.0.1:0", "--workers", str(workers), *args]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.port = None
        self.ports = []
        self.tls_ports = []
        # One 'listening on' line per listener, printed together once all are bound.
        want = 1 + sum(1 for a in args
                       if str(a).split("=")[0] in ("--listen", "--tls-listen"))
        deadline = time.time() + 10
        while time.time() < deadline and len(self.ports) < want:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            m = re.search(r"listening on \S+:(\d+)( \(tls\))?", line)
            if m:
                self.ports.append(int(m.group(1)))
                if m.group(2):
                    self.tls_ports.append(int(m.group(1)))
        if self.ports:
            self.port = self.ports[0]
        self.tls_port = self.tls_ports[0] if self.tls_ports else None
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("server did not start: %r" % self.lines)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        return self.proc.returncode

    def stop_checked(self):
        """Stops the server and fails unless it exited 0 (drain done, no sanitizer report)."""
        code = self.stop()
        if code != 0:
            raise AssertionError("server exited %r: %s" % (code, "\n".join(self.lines[-30:])))

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.stop_checked()
        else:
            self.stop()


def http(port, raw, timeout=5):
    """Sends raw request bytes; returns (status, headers dict, body) of the reply."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(raw)
        return read_response(s)
    finally:
        s.close()


def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:n]


def get(port, path):
    return http(port, ("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path).encode())


def metrics(port):
    """tickwire_* samples as {'name{labels}': float}."""
    status, _, body = get(port, "/metrics")
    assert status == 200, status
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def upgrade_request(path="/ws", key=None, extra=""):
    key = key or base64.b64encode(os.urandom(16)).decode()
    return key, ("GET %s HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
                 % (path, key, extra)).encode()


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """A client frame, masked unless told otherwise; `length` may lie about the size."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    if n < 126:
        hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + mask_bytes(payload, key)


def mask_bytes(payload, key):
    """RFC 6455 5.3 masking (an involution), done on whole integers: fast for big payloads."""
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


class WS:
    """A raw WebSocket client connection."""

    def __init__(self, port, path="/ws", extra="", timeout=5, wrap=None, rcvbuf=None,
                 source=None):
        if rcvbuf is None:  # source: a loopback address to connect from (127.0.0.0/8)
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                                 source_address=(source, 0) if source else None)
        else:  # set before connect, so the advertised window is small from the start
            self.sock = connect_small(port, rcvbuf, timeout)
        if wrap:  # e.g. TLS: wrap(sock) returns the socket to speak through
            self.sock = wrap(self.sock)
        key, req = upgrade_request(path, extra=extra)
        self.sock.sendall(req)
        self.buf = b""
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during handshake: %r" % head)
            head += chunk
        head, _, self.buf = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        if self.status != 101:
            raise ConnectionError("status %d" % self.status)
        assert self.headers["sec-websocket-accept"] == accept_of(key)

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(frame(opcode, payload, **kw))

    def send_text(self, text):
        self.send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def _need(self, n, timeout):
        deadline = time.time() + timeout
        while len(self.buf) < n:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("waiting for %d bytes" % n)
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv_frame(self, timeout=5):
        """(fin, opcode, payload) of the next server frame; asserts it is unmasked."""
        self._need(2, timeout)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frames must not be masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4, timeout)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, timeout)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n, timeout)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_text(self, timeout=5, skip_pings=True):
        while True:
            fin, op, payload = self.recv_frame(timeout)
            if op == 0x9 and skip_pings:
                continue
            assert op == 0x1, "expected text, got opcode %d %r" % (op, payload)
            return payload.decode()

    def expect_close(self, code, timeout=5):
        """Reads until a Close frame; asserts its code, then that TCP closes."""
        while True:
            fin, op, payload = self.recv_frame(timeout)
            if op == 0x8:
                got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                assert got == code, "close code %r, expected %r (%r)" % (got, code, payload)
                return payload[2:]

    def wait_eof(self, timeout=5):
        """True once the server has closed TCP (FIN or RST) within timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self):
        self.sock.close()


_bpf_buffers = []


def attach_drop_all_filter(sock):
    """A classic BPF socket filter that drops every packet: the kernel stops ACKing, as a
    client that lost power would. No privileges needed."""
    insn = struct.pack("HBBI", 0x06, 0, 0, 0)  # BPF_RET|BPF_K, 0: drop
    buf = ctypes.create_string_buffer(insn)
    prog = struct.pack("HL", 1, ctypes.addressof(buf))
    SO_ATTACH_FILTER = 26
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)
    _bpf_buffers.append(buf)  # the kernel copies the program; keep ours alive anyway


def wait_for(pred, timeout=10, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()



def connect_small(port, rcvbuf, timeout=5):
    """A TCP connection to 127.0.0.1:port whose SO_RCVBUF was set before connect()."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def read_to_end(sock, timeout=10, limit=None):
    """Reads until the peer closes: (data, how) with how "eof" (a FIN: recv gave b""),
    "reset" (ECONNRESET/EPIPE) or "timeout" (still open at the deadline). Stops early,
    with how "limit", once `limit` bytes are in."""
    data = bytearray()
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            return bytes(data), "timeout"
        if limit is not None and len(data) >= limit:
            return bytes(data), "limit"
        sock.settimeout(left)
        try:
            chunk = sock.recv(262144)
        except socket.timeout:
            return bytes(data), "timeout"
        except (ConnectionResetError, BrokenPipeError):
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk


def parse_responses(data, limit=None):
    """Splits bytes holding pipelined HTTP/1.1 responses (Content-Length framed):
    ([(status, headers, body), ...], the bytes after them); at most `limit` answers."""
    out = []
    pos = 0
    while limit is None or len(out) < limit:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = data[pos:end].decode("latin-1").split("\r\n")
        parts = lines[0].split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        if end + 4 + n > len(data):
            break
        out.append((status, headers, data[end + 4:end + 4 + n]))
        pos = end + 4 + n
    return out, data[pos:]


def parse_frames(data):
    """Splits bytes holding server frames: ([(fin, opcode, payload), ...], leftover)."""
    out = []
    pos = 0
    while len(data) - pos >= 2:
        b0, b1 = data[pos], data[pos + 1]
        assert not b1 & 0x80, "server frames must not be masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            if len(data) - pos < 4:
                break
            n, off = struct.unpack("!H", data[pos + 2:pos + 4])[0], 4
        elif n == 127:
            if len(data) - pos < 10:
                break
            n, off = struct.unpack("!Q", data[pos + 2:pos + 10])[0], 10
        if len(data) - pos < off + n:
            break
        out.append((bool(b0 & 0x80), b0 & 0x0F, bytes(data[pos + off:pos + off + n])))
        pos += off + n
    return out, bytes(data[pos:])


def close_code(payload):
    """The status code of a Close frame's payload (None when it carries none)."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


def peer_closed(sock):
    """True when the peer has shut down its side (FIN) or reset the connection, found
    without reading anything (poll: POLLRDHUP/POLLHUP/POLLERR)."""
    p = select.poll()
    p.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    return any(ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR)
               for _, ev in p.poll(0))


class HttpConn:
    """One keep-alive HTTP/1.1 connection: requests and their answers, one at a time."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def request(self, method, path, body=b"", headers=""):
        head = "%s %s HTTP/1.1\r\nHost: t\r\n%s" % (method, path, headers)
        if body or method == "POST":
            head += "Content-Length: %d\r\n" % len(body)
        self.sock.sendall(head.encode() + b"\r\n" + body)
        return self.response()

    def response(self):
        while True:
            got, rest = parse_responses(self.buf, limit=1)
            if got:
                self.buf = rest
                return got[0]
            chunk = self.sock.recv(262144)
            if not chunk:
                raise EOFError("connection closed: %r" % self.buf[:200])
            self.buf += chunk

    def close(self):
        self.sock.close()


def publish_http(port, topic, body, extra=""):
    """POST /publish?topic=... on a fresh connection: (status, headers, body)."""
    raw = ("POST /publish?topic=%s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
           "Content-Type: application/json\r\n%sConnection: close\r\n\r\n"
           % (topic, len(body), extra)).encode() + body
    return http(port, raw)
