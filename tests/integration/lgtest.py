"""Helpers for the tickwire-loadgen integration tests: a server whose stderr goes to a
file (the loadgen reads its 'detect' lines with --server-log), and a loadgen runner that
returns the parsed --json report. Standard library only."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import twtest

LOADGEN = os.environ.get("TICKWIRE_LOADGEN", "build/tickwire-loadgen")
HEARTBEAT = ["--ping-interval", "1s", "--idle-timeout", "3s"]


class LogServer:
    """The tickwire binary with its stderr in a file (self.log)."""

    def __init__(self, *args, workers=2, listen="127.0.0.1:0", log=None):
        self.log = log or tempfile.mktemp(prefix="tw-server-", suffix=".log")
        self.args = args
        self.workers = workers
        self.start(listen)

    def start(self, listen):
        self.errf = open(self.log, "a")
        cmd = [twtest.BIN, "--listen", listen, "--workers", str(self.workers), *self.args]
        self.proc = subprocess.Popen(cmd, stderr=self.errf)
        deadline = time.time() + 10
        self.port = None
        while time.time() < deadline and self.port is None:
            with open(self.log) as f:
                for m in re.finditer(r"listening on 127\.0\.0\.1:(\d+)", f.read()):
                    self.port = int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("server did not start: %s" % open(self.log).read())

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errf.close()
        return self.proc.returncode

    def restart(self):
        self.start("127.0.0.1:%d" % self.port)

    def lines(self):
        with open(self.log) as f:
            return f.read().splitlines()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        try:
            os.unlink(self.log)
        except OSError:
            pass


def loadgen(port, *args, timeout=60, wait=True):
    """Runs the loadgen against 127.0.0.1:port; returns (report, stdout, stderr), or the
    Popen and the report path when wait is False."""
    fd, path = tempfile.mkstemp(prefix="tw-lg-", suffix=".json")
    os.close(fd)
    cmd = [LOADGEN, "--target", "127.0.0.1:%d" % port, "--json", path, *args]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True), path
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return finish(p.returncode, p.stdout, p.stderr, path)


def finish(rc, out, err, path):
    sys.stdout.write(out)
    if rc != 0:
        raise AssertionError("loadgen exit %d:\n%s\n%s" % (rc, out, err[-3000:]))
    with open(path) as f:
        report = json.load(f)
    os.unlink(path)
    return report, out, err


def run(tests):
    """Runs test functions in order, printing a line each; exit status 1 on failure."""
    failed = 0
    for t in tests:
        start = time.time()
        try:
            t()
            print("PASS %s (%.1fs)" % (t.__name__, time.time() - start))
        except Exception as e:  # report and go on: every test gets its say
            failed += 1
            print("FAIL %s: %s" % (t.__name__, e))
            import traceback
            traceback.print_exc()
    sys.exit(1 if failed else 0)
