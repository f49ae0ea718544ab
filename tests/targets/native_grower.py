"""Shape: memory that grows outside Python's allocators, or inside them,
on command (tests/e2e/test_live.py, the live view's native-memory line).

The main thread blocks in read() on a pipe (poked only by `exit`).  Nothing
is traced at startup.  Commands of its own:

    native N   libc malloc() N bytes through ctypes (tracemalloc never sees
               them) and write every byte, so that RSS grows by N   -> ok
    leak N     N bytearrays of LEAK_SIZE bytes, kept (traced)        -> ok

Report: the number of native and Python blocks held.
"""

import ctypes

import _common

LEAK_SIZE = 10 * 1024
LEAKED = []
NATIVE = []

_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]


def native(n):
    p = _libc.malloc(n)
    if not p:
        raise MemoryError("malloc(%d)" % n)
    ctypes.memset(p, 0x5a, n)
    NATIVE.append(p)


class NativeGrower(_common.IdleShape):
    name = "native_grower"

    def command(self, words):
        if words[0] == "native":
            native(int(words[1]))
            return "ok"
        if words[0] == "leak":
            for _ in range(int(words[1])):
                LEAKED.append(bytearray(LEAK_SIZE))
            return "ok"
        return None

    def report(self):
        return "shape: native_grower\nnative: %d\nleaked: %d\n" % (len(NATIVE), len(LEAKED))


if __name__ == "__main__":
    _common.run(NativeGrower)
