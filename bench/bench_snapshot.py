"""Snapshot cost: trmtop vs tracemalloc in-process, on 1,000,000 live blocks.

Run: /usr/bin/python3 bench/bench_snapshot.py [--trmtop build/src/cli/trmtop] [--blocks 1000000]

For 3.11 and 3.13 (pyenv, when present) and traceback limits 1 and 25, a
target allocates --blocks live blocks from 50 lines (called through a
recursion deeper than 25 frames) with tracemalloc started by itself, then
waits.  In the same run it measures:
  (a) the target's pause while the agent copies traces (the agent's
      longest GIL hold, `trmtop snapshot -v`) vs tracemalloc.take_snapshot()
      timed inside the target;
  (b) `trmtop snapshot` + `trmtop top` wall time vs take_snapshot() +
      statistics('lineno') inside the target;
  (c) .trm size vs Snapshot.dump() size;
  (d) `trmtop top FILE` vs `Snapshot.load(dump)` + statistics('lineno') in a
      fresh interpreter (both wall time of the whole process);
  (e) peak RSS of trmtop for the snapshot and for top.
Prints the figures and the ratios.  Not a test: nothing here asserts.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

TARGET = r'''
import sys, time, tracemalloc
limit, blocks = int(sys.argv[1]), int(sys.argv[2])
tracemalloc.start(limit)
KEEP = []
per = blocks // 50
'''
for i in range(50):
    TARGET += "def site%d(n):\n    KEEP.extend([bytes(%d + (j & 7)) for j in range(n)])\n" % (i, 16 + i)
TARGET += r'''
SITES = [globals()["site%d" % i] for i in range(50)]
def deep(k, f):
    if k:
        return deep(k - 1, f)
    f(per)
for f in SITES:
    deep(30, f)
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "take":
        t = time.perf_counter(); s = tracemalloc.take_snapshot(); dt = time.perf_counter() - t
        del s
        print("%.6f" % dt, flush=True)
    elif cmd[0] == "take_stats":
        t = time.perf_counter(); s = tracemalloc.take_snapshot(); s.statistics("lineno")
        dt = time.perf_counter() - t
        del s
        print("%.6f" % dt, flush=True)
    elif cmd[0] == "dump":
        s = tracemalloc.take_snapshot(); s.dump(cmd[1]); del s
        print("ok", flush=True)
'''


def run(cmd):
    """Wall time (s), peak RSS (KiB) and output of a child."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.stdout.read(), p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (cmd, err.decode()))
    return wall, ru.ru_maxrss, out.decode(), err.decode()


def pythons():
    base = os.path.expanduser("~/.pyenv/versions")
    out = []
    for v in ("3.11", "3.13"):
        for d in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            if d.startswith(v + "."):
                out.append((d, os.path.join(base, d, "bin", "python3")))
    return out


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trmtop", default="build/src/cli/trmtop")
    ap.add_argument("--blocks", type=int, default=1000000)
    ap.add_argument("-n", type=int, default=3)
    args = ap.parse_args()
    trm = os.path.abspath(args.trmtop)
    with tempfile.TemporaryDirectory() as tmp:
        tpath = os.path.join(tmp, "target.py")
        with open(tpath, "w") as f:
            f.write(TARGET)
        for name, py in pythons():
            for limit in (1, 25):
                p = subprocess.Popen([py, tpath, str(limit), str(args.blocks)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                try:
                    assert p.stdout.readline().strip() == "ready"

                    def ask(cmd):
                        p.stdin.write(cmd + "\n")
                        p.stdin.flush()
                        return p.stdout.readline().strip()

                    takes = [float(ask("take")) for _ in range(args.n)]
                    take_stats = [float(ask("take_stats")) for _ in range(args.n)]
                    dump = os.path.join(tmp, "dump.pickle")
                    ask("dump " + dump)
                    trm_file = os.path.join(tmp, "snap.trm")
                    pauses, snap_walls, snap_rss, top_walls, top_rss = [], [], [], [], []
                    for _ in range(args.n):
                        w, rss, _, err = run([trm, "snapshot", "--pid", str(p.pid), "-v",
                                              "-o", trm_file])
                        snap_walls.append(w)
                        snap_rss.append(rss)
                        for line in err.splitlines():
                            if "at the longest" in line:
                                pauses.append(float(line.split(",")[1].split()[0]) / 1e3)
                        w, rss, _, _ = run([trm, "top", trm_file])
                        top_walls.append(w)
                        top_rss.append(rss)
                    pyload = [run([py, "-c",
                                   "import tracemalloc,sys; tracemalloc.Snapshot.load(sys.argv[1])"
                                   ".statistics('lineno')", dump])[0] for _ in range(args.n)]
                    e2e = [a + b for a, b in zip(snap_walls, top_walls)]
                    trm_size, dump_size = os.path.getsize(trm_file), os.path.getsize(dump)
                    print("%s limit %2d, %d blocks:" % (name, limit, args.blocks))
                    print("  (a) pause: agent %.0f ms vs take_snapshot %.0f ms -> %.2fx" %
                          (median(pauses) * 1e3, median(takes) * 1e3, median(pauses) / median(takes)))
                    print("  (b) trmtop snapshot+top %.0f ms vs take_snapshot+statistics %.0f ms -> %.1fx faster" %
                          (median(e2e) * 1e3, median(take_stats) * 1e3, median(take_stats) / median(e2e)))
                    print("  (c) .trm %d bytes vs dump %d bytes -> %.3fx" %
                          (trm_size, dump_size, trm_size / dump_size))
                    print("  (d) trmtop top %.0f ms vs Snapshot.load+statistics %.0f ms -> %.1fx faster" %
                          (median(top_walls) * 1e3, median(pyload) * 1e3, median(pyload) / median(top_walls)))
                    print("  (e) trmtop peak RSS: snapshot %.1f MiB, top %.1f MiB" %
                          (max(snap_rss) / 1024, max(top_rss) / 1024), flush=True)
                finally:
                    p.kill()
                    p.wait()


if __name__ == "__main__":
    sys.exit(main())
