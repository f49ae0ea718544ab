"""Shape: a steady leak on command, from one known line.

The main thread blocks in read() on a pipe (poked only by `exit`).  Nothing
is traced at startup.  Commands of its own:

    leak N     append N bytearrays of LEAK_SIZE bytes to LEAKED, all
               allocated at the LEAK-LINE marker below             -> ok
    linestat   {"size", "count"}: the target's own tracemalloc statistic of
               the LEAK-LINE line (both 0 when not tracing), as JSON

Report: the number of leaked blocks.
"""

import json
import tracemalloc

import _common

LEAK_SIZE = 10 * 1024
LEAKED = []


def leak(n):
    for _ in range(n):
        LEAKED.append(bytearray(LEAK_SIZE))   # LEAK-LINE


def _leak_line():
    with open(__file__) as f:
        for no, text in enumerate(f, 1):
            if text.rstrip().endswith("# LEAK-LINE") and "LEAKED.append" in text:
                return no
    raise RuntimeError("no LEAK-LINE marker")


LEAK_LINE = _leak_line()


def linestat():
    if not tracemalloc.is_tracing():
        return {"size": 0, "count": 0}
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, __file__, LEAK_LINE)])
    size = count = 0
    for st in snap.statistics("lineno"):
        size += st.size
        count += st.count
    return {"size": size, "count": count}


class Leaker(_common.IdleShape):
    name = "leaker"

    def command(self, words):
        if words[0] == "leak":
            leak(int(words[1]))
            return "ok"
        if words[0] == "linestat":
            return json.dumps(linestat(), sort_keys=True)
        return None

    def report(self):
        return "shape: leaker\nleaked: %d\n" % len(LEAKED)


if __name__ == "__main__":
    _common.run(Leaker)
