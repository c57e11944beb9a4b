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


def free_cluster_port():
    """A free port P with P + 10000 free too (Redis Cluster's bus), below 55536."""
    import random
    for _ in range(200):
        p = random.randrange(20000, 45000)
        try:
            for q in (p, p + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", q))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair")


class Redis:
    def __init__(self, port=None, persist=False):
        self.port = port or free_port()
        self.persist = persist
        self.dir = tempfile.mkdtemp(prefix="tw-redis-")
        self.proc = None
        self.extra = []
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persist else "no", "--appendfsync", "always",
             "--dir", self.dir, "--daemonize", "no",
             "--loglevel", "warning", *self.extra],
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


class RedisCluster:
    """Redis Cluster with `masters` masters (no replicas) on loopback, made with
    redis-cli --cluster create; every slot assigned before it returns."""

    def __init__(self, masters=3):
        self.nodes = []
        for _ in range(masters):
            r = Redis.__new__(Redis)
            r.port, r.persist, r.proc = free_cluster_port(), False, None
            r.dir = tempfile.mkdtemp(prefix="tw-redis-")
            r.extra = ["--cluster-enabled", "yes", "--cluster-config-file",
                       "nodes-%d.conf" % r.port, "--cluster-node-timeout", "2000"]
            r.start()
            self.nodes.append(r)
        addrs = ["127.0.0.1:%d" % r.port for r in self.nodes]
        subprocess.run([shutil.which("redis-cli") or "/usr/bin/redis-cli", "--cluster",
                        "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)
        deadline = time.time() + 20
        while time.time() < deadline:
            if all("cluster_state:ok" in info(r.port, "CLUSTER", "INFO") for r in self.nodes):
                return
            time.sleep(0.1)
        raise RuntimeError("cluster did not become ok")

    def url(self):
        return "redis-cluster://" + ",".join("127.0.0.1:%d" % r.port for r in self.nodes)

    def close(self):
        for r in self.nodes:
            r.close()


def info(port, *args):
    """A bulk-string reply's text (CLUSTER INFO, INFO ...)."""
    out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode())
                                            for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(out)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, _, rest = data.partition(b"\r\n")
            if head.startswith(b"$") and len(rest) >= int(head[1:]):
                break
            if head.startswith((b"-", b"+", b":")):
                break
        return data.decode(errors="replace")
