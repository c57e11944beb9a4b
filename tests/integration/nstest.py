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
    """Namespaces <tag>s and <tag>c ("server" and "client" hosts), veth <tag>S/<tag>C,
    addresses 10.X.Y.1/24 (server) and 10.X.Y.2/24 (client), X and Y random. Both ends of
    the veth live in the namespaces: nothing changes in the host's own network stack.
    Everything is removed on exit, whatever happened."""

    def __init__(self, tag=None):
        self.tag = tag or "tw%05x" % random.randrange(1 << 20)
        x, y = random.randrange(64, 250), random.randrange(1, 250)
        self.net = "10.%d.%d" % (x, y)
        self.server_addr = self.net + ".1"
        self.client_addr = self.net + ".2"
        self.ns = {"server": self.tag + "s", "client": self.tag + "c"}
        self.dev = {"server": self.tag + "S", "client": self.tag + "C"}
        self.client_extra = []  # addresses added with readdress()
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
            _ip("netns", "add", self.ns["client"])
            _ip("link", "add", self.dev["server"], "netns", self.ns["server"], "type", "veth",
                "peer", "name", self.dev["client"], "netns", self.ns["client"])
            for side, addr in (("server", self.server_addr), ("client", self.client_addr)):
                ns = self.ns[side]
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "addr", "add", addr + "/24", "dev", self.dev[side])
                _ip("-n", ns, "link", "set", self.dev[side], "up")
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
        """Sets side's end of the veth up or down. Down on either end cuts the carrier of
        both: no packets either way, and neither kernel is told anything about TCP."""
        _ip("-n", self.ns[side], "link", "set", self.dev[side], "up" if up else "down")

    def readdress(self, new_host):
        """The client's address changes (Wi-Fi to 4G, a NAT rebinding): 10.X.Y.<new_host>
        replaces the old one, so the packets of its connections go nowhere: the server's
        answers are for an address no host has any more."""
        new = "%s.%d" % (self.net, new_host)
        _ip("-n", self.ns["client"], "addr", "del", self.client_addr + "/24", "dev",
            self.dev["client"])
        _ip("-n", self.ns["client"], "addr", "add", new + "/24", "dev", self.dev["client"])
        self.client_addr = new
        return new
