"""Shape: an asyncio TCP server on 127.0.0.1 (port 0, reported in the ready
line), idle in its event loop.

Protocol: each request is one line; the answer is "echo " + the line.  The
report counts requests and checksums their contents in arrival order, so the
test must send the same requests in the attached and the unattached run.
A poke schedules a callback in the loop (it runs on the main thread).
"""

import asyncio
import zlib

import _common


class AsyncioServer(_common.Shape):
    name = "asyncio_server"

    def __init__(self, argv):
        _common.Shape.__init__(self, argv)
        self.requests = 0
        self.crc = 0
        self.loop = None
        self.announce_from_main = True

    async def handle(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                self.requests += 1
                self.crc = zlib.crc32(line, self.crc)
                writer.write(b"echo " + line)
                await writer.drain()
        finally:
            writer.close()

    async def serve(self):
        self.done = asyncio.Event()
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self.loop = asyncio.get_running_loop()
        self.ready_info = {"port": self.port}
        self.announce()
        await self.done.wait()
        server.close()
        await server.wait_closed()

    def main(self):
        asyncio.run(self.serve())

    def poke(self):
        self.loop.call_soon_threadsafe(self.tick)
        return True

    def wake_for_exit(self):
        self.loop.call_soon_threadsafe(self.done.set)

    def report(self):
        return "shape: asyncio_server\nrequests: %d\nchecksum: %08x\n" % (self.requests, self.crc)


if __name__ == "__main__":
    _common.run(AsyncioServer)
