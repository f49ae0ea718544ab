"""Shape: the main thread reads a byte stream from a pipe (the fd number is
the first extra argument; the test passes the read end) until EOF, then
waits for `exit`.

Report: byte count and SHA-256 of the stream, so data lost, duplicated or
reordered by an attach shows up.  The main thread cannot be poked (`sync`
answers "unsupported") until EOF; after EOF it waits on an Event.
"""

import hashlib
import os

import _common


class PipeReader(_common.Shape):
    name = "pipe_reader"

    def __init__(self, argv):
        _common.Shape.__init__(self, argv)
        self.fd = int(argv[0])
        self.nbytes = 0
        self.digest = hashlib.sha256()
        self.eof = False

    def main(self):
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            self.digest.update(chunk)
            self.nbytes += len(chunk)
            self.work += 1
        os.close(self.fd)
        self.eof = True
        self.tick()
        self.stop.wait()

    def poke(self):
        return False

    def wake_for_exit(self):
        pass

    def report(self):
        return "shape: pipe_reader\nbytes: %d\nsha256: %s\n" % (self.nbytes, self.digest.hexdigest())


if __name__ == "__main__":
    _common.run(PipeReader)
