"""An independent client: Debian's python3-websockets speaks to tickwire."""
import asyncio
import json
import unittest

import websockets

from twtest import Server


class Interop(unittest.TestCase):
    def test_websockets_library_client(self):
        with Server("--ping-interval", "1s", "--idle-timeout", "3s") as srv:
            async def run():
                uri = "ws://127.0.0.1:%d/ws" % srv.port
                async with websockets.connect(uri, ping_interval=None) as ws:
                    await ws.send(json.dumps({"type": "ping", "time": 99}))
                    self.assertEqual(json.loads(await ws.recv()), {"type": "pong", "time": 99})
                    pong_waiter = await ws.ping(b"abc")
                    await asyncio.wait_for(pong_waiter, 3)
                    # quiet for > ping interval: the library answers the server's Ping
                    await asyncio.sleep(4)
                    await ws.send(json.dumps({"type": "ping", "time": "t"}))
                    self.assertEqual(json.loads(await ws.recv())["time"], "t")
                    await ws.close(code=1000, reason="done")
                    self.assertEqual(ws.close_code, 1000)
            asyncio.run(run())


if __name__ == "__main__":
    unittest.main()
