"""The web files built into the binary (DESIGN 6): GET /tickwire.js is the client library
(text/javascript, an ETag, Cache-Control), GET / the demo page (text/html), both the
bytes of src/js in the tree the server was built from; a request with the current ETag
in If-None-Match gets 304 and no body. --demo publishes the synthetic feed: the symbol
list on demo.symbols and ticks on each symbol."""
import json
import os
import unittest

from twtest import Server, WS, http

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "js")


def get(port, path, extra=""):
    return http(port, ("GET %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n"
                       % (path, extra)).encode())


class WebFiles(unittest.TestCase):
    def test_library_and_page(self):
        with Server(workers=1) as srv:
            for path, name, ctype in (("/tickwire.js", "tickwire.js", "text/javascript"),
                                      ("/", "index.html", "text/html")):
                st, h, body = get(srv.port, path)
                self.assertEqual(st, 200, path)
                self.assertTrue(h["content-type"].startswith(ctype), h)
                with open(os.path.join(SRC, name), "rb") as f:
                    self.assertEqual(body, f.read(), "%s is not the tree's %s" % (path, name))
                self.assertIn("no-cache", h.get("cache-control", ""))
                etag = h["etag"]
                st, h2, body = get(srv.port, path, "If-None-Match: %s\r\n" % etag)
                self.assertEqual((st, body), (304, b""))
                self.assertEqual(h2["etag"], etag)
                self.assertNotIn("content-length", h2)
                st, _, _ = get(srv.port, path, 'If-None-Match: "stale"\r\n')
                self.assertEqual(st, 200)
            self.assertEqual(get(srv.port, "/nothing.js")[0], 404)

    def test_demo_feed(self):
        with Server("--demo", workers=2) as srv:
            w = WS(srv.port)
            w.send_text('{"type":"subscribe","topic":"demo.symbols","snapshot":true}')
            index = json.loads(w.recv_text())
            self.assertEqual(index["type"], "message")
            symbols = index["data"]["symbols"]
            self.assertGreaterEqual(len(symbols), 20)
            self.assertEqual(json.loads(w.recv_text())["type"], "subscribed")
            for s in symbols:
                w.send_text(json.dumps({"type": "subscribe", "topic": s}))
            ticks = 0
            while ticks < 100:  # a few hundred a second in all: well under the 5 s wait
                m = json.loads(w.recv_text(timeout=5))
                if m["type"] == "message":
                    self.assertIn(m["topic"], symbols)
                    self.assertIsInstance(m["data"]["px"], (int, float))
                    ticks += 1
            w.close()


if __name__ == "__main__":
    unittest.main()
