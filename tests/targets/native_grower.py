"""Shape: memory that grows outside Python's allocators, or inside them,
on command (tests/e2e/test_live.py, the live view's native-memory line).

The main thread blocks in read() on a pipe (poked only by `exit`).  Nothing
is traced at startup.  Commands of its own:

    native N   libc malloc() N bytes through ctypes (tracemalloc never sees
               them) and write every byte, so that RSS grows by N   -> ok
    leak N     N bytearrays of LEAK_SIZE bytes, kept (traced)        -> ok
    drip MS    a thread appends a LEAK_SIZE bytearray to DRIPPED every MS
               milliseconds, at the DRIP-LINE marker (a steady leak from
               one line, as a live view sees one); drip 0 stops it (the
               reply comes once it has stopped)                      -> ok

Report: the number of native and Python blocks held.
"""

import ctypes

import _common

LEAK_SIZE = 10 * 1024
LEAKED = []
NATIVE = []
DRIPPED = []

_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]


def native(n):
    p = _libc.malloc(n)
    if not p:
        raise MemoryError("malloc(%d)" % n)
    ctypes.memset(p, 0x5a, n)
    NATIVE.append(p)


def drip_one():
    DRIPPED.append(bytearray(LEAK_SIZE))   # DRIP-LINE


class NativeGrower(_common.IdleShape):
    name = "native_grower"

    def __init__(self, argv):
        _common.IdleShape.__init__(self, argv)
        self.drip = _common.Periodic(drip_one)

    def command(self, words):
        if words[0] == "drip":
            self.drip.set(int(words[1]))
            return "ok"
        if words[0] == "native":
            native(int(words[1]))
            return "ok"
        if words[0] == "leak":
            for _ in range(int(words[1])):
                LEAKED.append(bytearray(LEAK_SIZE))
            return "ok"
        return None

    def report(self):
        self.drip.set(0)
        return "shape: native_grower\nnative: %d\nleaked: %d\n" % (len(NATIVE), len(LEAKED))


if __name__ == "__main__":
    _common.run(NativeGrower)
