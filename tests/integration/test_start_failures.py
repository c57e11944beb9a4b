"""Starting and stopping at the edges (issue 9 item 16): a worker that cannot set up its
ring fails the start as a whole — one message, exit 1, nothing claimed to be listening,
everything released (the sanitizer build reports any leak) — instead of the server saying
"listening" and then a worker thread calling exit(); and a SIGTERM that arrives while
workers are still starting drains cleanly (exit 0)."""
import os
import resource
import signal
import subprocess
import time
import unittest

BIN = os.environ.get("TICKWIRE_BIN", "build/tickwire")


def low_nofile():
    # Six workers need six ring descriptors on top of their listeners: the last fail.
    resource.setrlimit(resource.RLIMIT_NOFILE, (13, 13))


class StartFailures(unittest.TestCase):
    def test_worker_setup_failure_fails_the_start(self):
        p = subprocess.run([BIN, "--listen", "127.0.0.1:0", "--workers", "6"],
                           preexec_fn=low_nofile, capture_output=True, text=True, timeout=20)
        err = p.stderr.splitlines()
        self.assertEqual(p.returncode, 1, err)
        self.assertFalse(any("listening on" in l for l in err),
                         "claimed to listen though a worker failed: %r" % err)
        self.assertTrue(any("failed to start" in l for l in err), err)

    def test_sigterm_during_start_drains(self):
        for i in range(20):
            p = subprocess.Popen([BIN, "--listen", "127.0.0.1:0", "--workers", "4"],
                                 stderr=subprocess.PIPE, text=True)
            time.sleep(0.002 * i)
            p.send_signal(signal.SIGTERM)
            try:
                _, err = p.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                self.fail("attempt %d: still running 15 s after SIGTERM" % i)
            self.assertIn(p.returncode, (0, -signal.SIGTERM),
                          "attempt %d: exit %r: %s" % (i, p.returncode, err))


if __name__ == "__main__":
    unittest.main()
