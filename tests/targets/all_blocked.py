"""Shape: every thread is blocked.  The main thread is in socket.accept() on a
listening socket on 127.0.0.1, two workers are in queue.get(), the command
thread is in read().

At start the main thread feeds the workers a fixed batch and waits for it, so
the report (a checksum of the batch's results) is deterministic.  A poke is a
connection to the listening socket: accept() returns, the connection is
closed, the main thread counts a tick and accepts again.
"""

import queue
import socket
import threading
import zlib

import _common

WORKERS = 2
ITEMS = 64


class AllBlocked(_common.Shape):
    name = "all_blocked"

    def __init__(self, argv):
        _common.Shape.__init__(self, argv)
        self.q = queue.Queue()
        self.results = {}
        self.lock = threading.Lock()

    def worker(self):
        while True:
            item = self.q.get()
            if item is None:
                self.q.task_done()
                return
            value = _common.work_unit(item)
            with self.lock:
                self.results[item] = value
                self.work += 1
            self.q.task_done()

    def setup(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.workers = [
            threading.Thread(target=self.worker, name="worker-%d" % i) for i in range(WORKERS)
        ]
        for t in self.workers:
            t.start()
        for i in range(ITEMS):
            self.q.put(i)
        self.q.join()
        self.ready_info = {"port": self.port}

    def main(self):
        while True:
            conn, _ = self.sock.accept()
            conn.close()
            self.tick()
            if self.stop.is_set():
                break
        for _ in self.workers:
            self.q.put(None)
        for t in self.workers:
            t.join()
        self.sock.close()

    def poke(self):
        c = socket.create_connection(("127.0.0.1", self.port))
        c.close()
        return True

    def report(self):
        crc = 0
        for i in range(ITEMS):
            crc = zlib.crc32(("%d:%d\n" % (i, self.results[i])).encode(), crc)
        return "shape: all_blocked\nitems: %d\nchecksum: %08x\n" % (len(self.results), crc)


if __name__ == "__main__":
    _common.run(AllBlocked)
