"""snap_bench.py AGENT_SO [NTRACES] [NFRAME]: GIL hold of a wire snapshot
vs tracemalloc.take_snapshot() in the same process.

Loads the agent like agent_selftest.py, starts tracing with NFRAME frames
(default 1), allocates about NTRACES traced blocks (default 1,000,000)
from 64 call sites at varying depths, then times, best of 5:
  take_snapshot()            tracemalloc's own snapshot (GIL held all along)
  take_snapshot() + del      the same plus freeing it again
  wire                       the agent's GIL holds for one SNAPSHOT_REQ
                             (in all, and its longest single hold), as the
                             agent reports them in SNAP_END; first and
                             later snapshots on one connection.
Not a test: prints numbers.
"""
import os
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_selftest as a  # noqa: E402


def alloc(k, n, depth):
    if depth:
        return alloc(k, n, depth - 1)
    return [str(k * 10000000 + i) for i in range(n)]


def read_snapshot(s):
    """SNAPSHOT_REQ; skip the chunks; SNAP_END as a dict."""
    s.send(a.SNAPSHOT_REQ)
    s.expect(a.SNAP_HEAD)
    nbytes = 0
    while True:
        typ, p = s.recv()
        nbytes += len(p) + 8
        if typ == a.SNAP_END:
            break
    keys = ("ntraces", "total_size", "nstrings", "nframes", "ntracebacks",
            "gil_ns", "gil_max_ns")
    end = dict(zip(keys, a.SNAP_END_FMT.unpack_from(p)))
    end["bytes"] = nbytes
    return end


def connect(nframe):
    s = a.Session()
    s.bootstrap(load="_trmtop_agent" not in sys.modules)
    s.hello()
    s.start(nframe, a.KEEP)
    return s


def main(argv):
    a.AGENT_SO = argv[1]
    n = int(argv[2]) if len(argv) > 2 else 1000000
    nframe = int(argv[3]) if len(argv) > 3 else 1
    rounds = 5
    s = connect(nframe)
    keep = [alloc(k, n // 64, k % 8) for k in range(64)]
    snap = tracemalloc.take_snapshot()    # warm up both paths
    ntr = len(snap.traces)
    del snap
    read_snapshot(s)
    s.detach()
    print("python %s, %d traces, %d frames, median of %d rounds" %
          (sys.version.split()[0], ntr, nframe, rounds))

    res = {"take": [], "take+del": [], "first": [], "later": []}
    for _ in range(rounds):
        t0 = time.perf_counter()
        snap = tracemalloc.take_snapshot()
        t1 = time.perf_counter()
        del snap
        t2 = time.perf_counter()
        res["take"].append(t1 - t0)
        res["take+del"].append(t2 - t0)
        s = connect(nframe)               # fresh interning tables
        for k in ("first", "later"):
            t0 = time.perf_counter()
            e = read_snapshot(s)
            e["wall"] = time.perf_counter() - t0
            res[k].append(e)
        s.detach()

    def med(v, key=None):
        return sorted(v, key=key)[len(v) // 2]

    take = med(res["take"])
    print("take_snapshot()          %8.1f ms" % (take * 1e3))
    print("take_snapshot() + del    %8.1f ms" % (med(res["take+del"]) * 1e3))
    for k in ("first", "later"):
        gil = med([e["gil_ns"] for e in res[k]]) / 1e9
        mx = med([e["gil_max_ns"] for e in res[k]]) / 1e9
        e = med(res[k], key=lambda e: e["wall"])
        print("wire, %-6s snapshot   %8.1f ms GIL in all (%.2fx), longest "
              "hold %.1f ms (%.2fx); %.1f ms to receive %.1f MB"
              % (k, gil * 1e3, gil / take, mx * 1e3, mx / take,
                 e["wall"] * 1e3, e["bytes"] / 1e6))
    s = connect(nframe)
    s.stop()
    s.detach()
    del keep
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
