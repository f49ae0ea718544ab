"""Unattachable shape: the only thread (main) is blocked in read(2) on a pipe,
called through ctypes.PyDLL, i.e. *holding the GIL*.  No thread is at a
safe point and none is parked with the GIL released, so trmtop can neither
run a pending call nor hijack a thread: it must give up after
--attach-timeout, naming what the main thread is blocked in (read).

The first extra argument is the fd of the pipe's read end.  When the test
writes one byte, read() returns, the main thread runs a few thousand Python
calls (where a pending call left behind by trmtop would run) and then serves
commands itself (there is no command thread), e.g. `truth`.
"""

import ctypes

import _common


def _spin(n):
    acc = 0
    for i in range(n):
        acc += _common.work_unit(i & 15) & 1
    return acc


class CBlocked(_common.Shape):
    name = "c_blocked"

    def __init__(self, argv):
        _common.Shape.__init__(self, argv)
        self.fd = int(argv[0])
        self.commands_after_main = True
        self.got = -1

    def main(self):
        libc = ctypes.PyDLL(None)  # PyDLL: the GIL stays held during the call
        libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        libc.read.restype = ctypes.c_ssize_t
        buf = ctypes.create_string_buffer(1)
        self.got = libc.read(self.fd, buf, 1)
        self.work = _spin(2000)
        self.tick()

    def report(self):
        return "shape: c_blocked\nread: %d\n" % self.got


if __name__ == "__main__":
    _common.run(CBlocked)
