"""Shape: heavy lines for the sampler, with the target's own tracemalloc as
the ground truth.

tracemalloc is started at startup (1 frame: the application's tracing, so
trmtop never stops it); the sampler is trmtop's.  The main thread blocks in
read() on a pipe (poked only by `exit`).  Commands of its own:

    run        allocate, from four marked lines, blocks none of which is
               freed but CHURN's:
                 KEEP-A   24 MiB in 2000-byte bytes objects
                 KEEP-B   12 MiB in 8 KiB bytes objects
                 BIG      16 MiB in 64 KiB bytes objects
                 CHURN    48 MiB in 4 KiB bytes objects, only the last 8 MiB
                          of them kept                              -> ok
    leak N     N MiB more in 1 KiB bytes objects at LEAK               -> ok
    lines      {"MARKER": {"line", "size", "count"}} for each marker:
               this process's tracemalloc statistics of its line, as JSON

Every marked line only allocates the bytes object it keeps (the lists that
hold them are made beforehand), so a line that keeps everything has as
much allocated as in use.  A bytes object is one block (a bytearray is
two, its 56-byte header too rare in 64 KiB sampling for its blocks to be
counted within 25%).

Report: the MiB leaked.
"""

import json
import tracemalloc

import _common

MIB = 1 << 20
HELD = {}
LEAKED = []
MARKERS = ("KEEP-A", "KEEP-B", "BIG", "CHURN", "LEAK")


def keep_a():
    n = 24 * MIB // 2000
    keep = [None] * n
    for i in range(n):
        keep[i] = bytes(2000)   # KEEP-A
    HELD["a"] = keep


def keep_b():
    n = 12 * MIB // 8192
    keep = [None] * n
    for i in range(n):
        keep[i] = bytes(8192)   # KEEP-B
    HELD["b"] = keep


def big():
    n = 16 * MIB // 65536
    keep = [None] * n
    for i in range(n):
        keep[i] = bytes(65536)   # BIG
    HELD["big"] = keep


def churn():
    ring = 8 * MIB // 4096
    keep = [None] * ring
    for i in range(48 * MIB // 4096):
        keep[i % ring] = bytes(4096)   # CHURN
    HELD["churn"] = keep


def leak(mib):
    n = mib * MIB // 1024
    keep = [None] * n
    for i in range(n):
        keep[i] = bytes(1024)   # LEAK
    LEAKED.append(keep)


def _lines():
    found = {}
    with open(__file__) as f:
        for no, text in enumerate(f, 1):
            for m in MARKERS:
                if text.rstrip().endswith("# " + m) and "bytes(" in text:
                    found[m] = no
    return found


LINES = _lines()


def lines():
    stats = {}
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, __file__)])
    for st in snap.statistics("lineno"):
        stats[st.traceback[0].lineno] = (st.size, st.count)
    return {m: {"line": no, "size": stats.get(no, (0, 0))[0],
                "count": stats.get(no, (0, 0))[1]}
            for m, no in LINES.items()}


class SampledLines(_common.IdleShape):
    name = "sampled_lines"

    def setup(self):
        tracemalloc.start(1)

    def command(self, words):
        if words[0] == "run":
            keep_a()
            keep_b()
            big()
            churn()
            return "ok"
        if words[0] == "leak":
            leak(int(words[1]))
            return "ok"
        if words[0] == "lines":
            return json.dumps(lines(), sort_keys=True)
        return None

    def report(self):
        return "shape: sampled_lines\nleaked: %d MiB\n" % sum(
            len(k) // 1024 for k in LEAKED)


if __name__ == "__main__":
    _common.run(SampledLines)
