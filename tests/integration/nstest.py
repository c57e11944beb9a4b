"""Two test hosts as network namespaces joined by a veth pair, for failures that a single
network stack cannot play: a pulled cable (the link down), a host that vanishes, an
address that changes. Standard library and iproute2 only; needs root (CAP_NET_ADMIN and
CAP_SYS_ADMIN for setns).

    with nstest.Pair() as net:          # raises nstest.Unavailable when it cannot be built
        srv = net.popen("server", [...])  # a program inside the server's namespace
        with net.inside("client"):        # sockets made here belong to the client's host
            s = socket.create_connection((net.server_addr, 8080))
        net.link("client", False)         # partition: no packets either way
"""

import contextlib
import ctypes
import os
import random
import shutil
import subprocess
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()


class Unavailable(Exception):
    """Namespaces cannot be made here (not root, no iproute2, no netns support)."""


def _ip(*args, check=True):
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


class Pair:
    """Namespaces <tag>s (the "server" host) and one per client host (<tag>c for the one
    called "client"; more with clients=(...)), each client joined to the server by its
    own veth pair on its own subnet: 10.X.Y.1/24 on the server's end, 10.X.Y.2/24 on the
    client's, X and Y random (Y + i for the i-th client). Both ends of every veth live in
    the namespaces: nothing changes in the host's own network stack. Everything is
    removed on exit, whatever happened."""

    def __init__(self, tag=None, clients=("client",)):
        self.tag = tag or "tw%05x" % random.randrange(1 << 20)
        x, y = random.randrange(64, 250), random.randrange(1, 250 - len(clients))
        self.clients = list(clients)
        self.ns = {"server": self.tag + "s"}
        self.dev, self.sdev, self.subnet, self.addr, self.server_addrs = {}, {}, {}, {}, {}
        for i, name in enumerate(self.clients):
            self.ns[name] = self.tag + ("c" if name == "client" else name[:4])
            self.dev[name] = "%sC%d" % (self.tag, i)  # the client's end
            self.sdev[name] = "%sS%d" % (self.tag, i)  # the server's end
            self.subnet[name] = "10.%d.%d" % (x, y + i)
            self.addr[name] = self.subnet[name] + ".2"
            self.server_addrs[name] = self.subnet[name] + ".1"
        first = self.clients[0]
        self.net = self.subnet[first]
        self.server_addr = self.server_addrs[first]
        self.client_addr = self.addr[first]
        self.procs = []

    def __enter__(self):
        if os.geteuid() != 0:
            raise Unavailable("not root: network namespaces need CAP_NET_ADMIN")
        if not shutil.which("ip"):
            raise Unavailable("iproute2's 'ip' is not installed")
        try:
            p = _ip("netns", "add", self.ns["server"], check=False)
            if p.returncode != 0:
                raise Unavailable("ip netns add failed: %s" % p.stderr.strip())
            _ip("-n", self.ns["server"], "link", "set", "lo", "up")
            for name in self.clients:
                ns = self.ns[name]
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("link", "add", self.sdev[name], "netns", self.ns["server"], "type", "veth",
                    "peer", "name", self.dev[name], "netns", ns)
                for n, dev, addr in ((self.ns["server"], self.sdev[name],
                                      self.server_addrs[name]),
                                     (ns, self.dev[name], self.addr[name])):
                    _ip("-n", n, "addr", "add", addr + "/24", "dev", dev)
                    _ip("-n", n, "link", "set", dev, "up")
        except Unavailable:
            self.cleanup()
            raise
        except Exception as e:
            self.cleanup()
            raise Unavailable("could not build the namespaces: %s" % e)
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        for ns in self.ns.values():
            _ip("netns", "del", ns, check=False)  # takes its end of the veth with it

    def popen(self, side, cmd, **kw):
        """cmd inside the namespace of `side`; killed at cleanup if still running."""
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[side], *cmd], **kw)
        self.procs.append(p)
        return p

    def run(self, side, cmd, **kw):
        return subprocess.run(["ip", "netns", "exec", self.ns[side], *cmd], **kw)

    @contextlib.contextmanager
    def inside(self, side):
        """This thread's network namespace is side's while the block runs: sockets made
        there stay in it afterwards. One thread at a time switches (setns is per thread,
        but a lock keeps the helpers simple)."""
        with _setns_lock:
            orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open("/run/netns/" + self.ns[side], os.O_RDONLY)
            try:
                if _libc.setns(target, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                try:
                    yield
                finally:
                    if _libc.setns(orig, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns back")
            finally:
                os.close(target)
                os.close(orig)

    def link(self, side, up):
        """Sets side's end of its veth up or down ("server": the server's end of every
        veth). Down on either end cuts the carrier of both: no packets either way, and
        neither kernel is told anything about TCP."""
        ends = ([(self.ns["server"], d) for d in self.sdev.values()] if side == "server"
                else [(self.ns[side], self.dev[side])])
        for ns, dev in ends:
            _ip("-n", ns, "link", "set", dev, "up" if up else "down")

    def readdress(self, new_host, side=None):
        """A client's address changes (Wi-Fi to 4G, a NAT rebinding): 10.X.Y.<new_host>
        replaces the old one, so the packets of its connections go nowhere: the server's
        answers are for an address no host has any more."""
        side = side or self.clients[0]
        old, new = self.addr[side], "%s.%d" % (self.subnet[side], new_host)
        _ip("-n", self.ns[side], "addr", "del", old + "/24", "dev", self.dev[side])
        _ip("-n", self.ns[side], "addr", "add", new + "/24", "dev", self.dev[side])
        self.addr[side] = new
        if side == self.clients[0]:
            self.client_addr = new
        return new
