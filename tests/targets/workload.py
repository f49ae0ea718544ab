"""Shape: a deterministic allocation workload, then quiescence.

    workload.py REPLY CTL OUT app    tracemalloc.start(FRAMES) and the
                                     workload run at startup, before `ready`
    workload.py REPLY CTL OUT late   nothing traced at startup; the workload
                                     runs on command `run` (after trmtop has
                                     turned tracing on)

The workload allocates from more than 20 distinct lines of this file and of
two generated modules (compiled under the file names in GENERATED, which do
not exist on disk), through several call paths and through recursion deeper
than FRAMES; it runs FRAMES frames below its caller, so that no traceback of
its own reaches _common.py; it keeps everything alive in KEEP.  Two lines
(TIE-A, TIE-B) allocate exactly the same sizes and counts, so that their
statistics tie on (size, count) and only the traceback orders them.

Afterwards nothing allocates: the main thread blocks in read() on a pipe
(poked only by `exit`) and the command thread in read() on the control FIFO,
so a trmtop snapshot and the in-process `dump` (see _common.py) see the same
traces, except for those made by the command handling (_common.py),
tracemalloc.py and trmtop's bootstrap, which the tests filter out.

Commands of its own:
    run       run the workload now (late mode; tracing must be on)  -> ok
    collect   gc.collect()                   -> the number it found unreachable

Lines the tests look up carry a `   # NAME` marker comment.
"""

import gc
import json
import sys
import tracemalloc

import _common

FRAMES = 4
DEPTH = 9  # recursion depth, > FRAMES
KEEP = []

GENERATED = ("/nonexistent/trmtop-gen/alpha.py", "/nonexistent/trmtop-gen/beta.py")
GEN_SRC = """
def make_list(n):
    return [None] * n

def make_str(n, keep):
    keep.append("g" * n)
    keep.append(bytearray(n))

def via(fn, n, keep):
    keep.append(fn(n))
"""


class Box(object):
    def __init__(self, n):
        self.payload = bytearray(n)   # BOX-PAYLOAD
        self.items = list(range(n // 64))


class Slotted(object):
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a = a
        self.b = b


def leaf_bytes(n):
    return bytearray(n)   # LEAF-BYTES


def leaf_list(n):
    return [0] * n   # LEAF-LIST


def leaf_dict(n):
    return dict.fromkeys(range(n))   # LEAF-DICT


def leaf_str(n):
    return "s" * n   # LEAF-STR


def leaf_tuple(n):
    return tuple(range(n))   # LEAF-TUPLE


def leaf_set(n):
    return set(range(n))   # LEAF-SET


def recurse(depth, n):
    if depth == 0:
        return bytearray(n)   # RECURSE-LEAF
    KEEP.append(bytes(16 + depth))   # RECURSE-STEP
    return recurse(depth - 1, n)


def path_one(n):
    KEEP.append(leaf_bytes(n))
    KEEP.append(leaf_list(n // 8))


def path_two(n):
    for i in range(3):
        KEEP.append(leaf_bytes(n + i))
    KEEP.append(leaf_dict(n // 32))


def path_three(n):
    KEEP.append(recurse(DEPTH, n))


def path_four(n):
    KEEP.append(recurse(DEPTH - 3, n))   # same leaf, other depth and caller
    KEEP.append(leaf_str(n))


def many_small():
    out = []
    for i in range(300):
        out.append(Slotted(i, -i))   # MANY-SLOTTED
    for i in range(100):
        out.append(str(i) * 3)   # MANY-STR
    return out


def ties():
    KEEP.append(bytearray(3000))   # TIE-A
    KEEP.append(bytearray(3000))   # TIE-B


def generated():
    for i, fn in enumerate(GENERATED):
        ns = {}
        exec(compile(GEN_SRC, fn, "exec"), ns)
        KEEP.append(ns)
        ns["make_str"](100 * (i + 1), KEEP)
        ns["via"](ns["make_list"], 50 * (i + 1), KEEP)
        ns["via"](leaf_tuple, 40 * (i + 1), KEEP)


def deep(levels, fn):
    """Calls fn() `levels` frames down, so that the callers of the workload
    (_common.py) fall outside its FRAMES-frame tracebacks."""
    if levels == 0:
        return fn()
    return deep(levels - 1, fn)


def workload():
    deep(FRAMES, _workload)


def _workload():
    KEEP.append(Box(4096))
    KEEP.append(Box(1024))
    for n in (1000, 2000, 5000):
        path_one(n)
    path_two(777)
    path_two(10000)
    for n in (300, 3000):
        path_three(n)
        path_four(n)
    KEEP.append(many_small())
    KEEP.append([leaf_set(n) for n in (10, 100, 1000)])
    ties()
    generated()
    KEEP.append(json.dumps({"k%d" % i: i for i in range(50)}))  # allocates in json.encoder
    KEEP.append(sorted(range(500), key=lambda v: -v))   # SORTED
    KEEP.append(" ".join(map(str, range(200))).split())   # SPLIT
    KEEP.append(b"w" * 12345)   # BYTES-MUL
    KEEP.append(memoryview(bytearray(777)))   # MEMORYVIEW
    KEEP.append({("t", i): [i] for i in range(40)})   # DICT-COMP
    gc.collect()


class Workload(_common.IdleShape):
    name = "workload"

    def __init__(self, argv):
        _common.IdleShape.__init__(self, argv)
        self.mode = argv[0] if argv else "app"
        if self.mode not in ("app", "late"):
            raise SystemExit("workload: mode must be app or late")
        self.ran = False

    def setup(self):
        if self.mode == "app":
            tracemalloc.start(FRAMES)
            workload()
            self.ran = True

    def command(self, words):
        if words[0] == "run":
            if not tracemalloc.is_tracing():
                return "error not tracing"
            if self.ran:
                return "error already ran"
            workload()
            self.ran = True
            return "ok"
        if words[0] == "collect":
            return str(gc.collect())
        return None

    def report(self):
        return "shape: workload\nmode: %s\nran: %s\nkept: %d\n" % (self.mode, self.ran, len(KEEP))


if __name__ == "__main__":
    _common.run(Workload)
