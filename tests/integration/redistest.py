"""A real redis-server for the cluster tests: on 127.0.0.1 and a free port of its own,
without persistence (a restart comes back empty, as DESIGN 10's "Redis restarted empty"
case needs), stopped by the test."""
import shutil
import socket
import subprocess
import tempfile
import time

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(port, *args, timeout=2):
    """One command over a plain socket, the reply's first line (enough for PING, INFO
    sizes, CONFIG): the tests do not need a RESP parser of their own."""
    out = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() if isinstance(x, str) else x
                                                  for x in args))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(out)
        return s.recv(65536).split(b"\r\n")[0].decode()


class Redis:
    def __init__(self, port=None, persist=False):
        self.port = port or free_port()
        self.persist = persist
        self.dir = tempfile.mkdtemp(prefix="tw-redis-")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persist else "no", "--appendfsync", "always",
             "--dir", self.dir, "--daemonize", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if command(self.port, "PING") == "+PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start on %d" % self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
