"""The cost of the sampler (`trmtop start --sample`) on a running program,
against tracemalloc and against nothing, issue 12.

Run: /usr/bin/python3 bench/bench_sample.py [--trmtop LABEL=PATH]...
         [--python PATH]... [--rounds 5] [--size 512KiB]... [--frames 16]

For each interpreter (3.11.7 and 3.13.0 from pyenv by default; --python
to choose), each SIZE (--size; tracemalloc is measured with the first
only) and each trmtop (--trmtop, default build/src/cli/trmtop; give
two, e.g. old=... new=..., to compare agents in the same run), one target
keeps 1,000,000 objects live (a list of str) and runs, on request, one of
two workloads for a fixed number of iterations, timing itself with
time.thread_time() (the CPU time of its main thread: other load on the
shared machine moves it less than the wall clock):
  alloc  a loop creating and dropping a list, a dict and a str (3,000,000
         times);
  json   json.dumps and json.loads of a dict of 300 keys with nested values
         (1000 times).
Each round measures, per target and workload, in an order that rotates
from round to round: (a) untraced, (b) tracemalloc.start(1) by the target
itself, (c) the sampler at SIZE with --frames frames, started for real
with `trmtop start --pid P --sample=SIZE --frames N` and ended with
`trmtop stop --pid P`.  It prints each run's ratio (b)/(a) and (c)/(a)
of the same round, then the medians with the range; then, with the
sampler on, after one run of each workload and 1,000,000 more objects
allocated from 50 lines and kept, the sampler's memory
(sample_memory of `trmtop stats --pid P --json`) against the target's
RSS there, and against the goal (1% of the RSS + 4 MiB).  The load
average is printed before and after.  Not a test: nothing here asserts.

Then the GIL hold of a live refresh with those 2,000,000 objects live:
`trmtop --pid P --sample --batch --format json --iterations 5` (the
sampler running: its per-traceback totals), then the same objects
traced by tracemalloc.start(1) and the exact view (every trace copied):
the agent's hold per refresh (hold_ns), median and longest.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

TARGET = r'''
import json, sys, time, tracemalloc
KEEP = [str(i) for i in range(1000000)]
DOC = {"key%d" % i: {"id": i, "name": "n%d" % i, "tags": ["a", "b", str(i)],
                     "score": i * 0.5} for i in range(300)}

def alloc(n):
    for i in range(n):
        a = [i, i + 1, i + 2]
        b = {"k": a, "i": i}
        c = str(i) * 3
        del a, b, c

def jsonw(n):
    for _ in range(n):
        json.loads(json.dumps(DOC))

def grow(n):
    # 1,000,000 more objects from 50 lines, kept: what the sampler holds
    for k in range(50):
        exec("GROWN.extend([('%d' * 3) + str(i) for i in range(n // 50)])" % k)

GROWN = []
WORK = {"alloc": (alloc, 3000000), "json": (jsonw, 1000),
        "grow": (grow, 1000000), "drop": (lambda n: GROWN.clear(), 0)}
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "tm":
        if cmd[1] == "on":
            tracemalloc.start(1)
        else:
            tracemalloc.stop()
        out = "ok"
    else:
        f, n = WORK[cmd[0]]
        t0 = time.thread_time()
        f(n)
        out = "%.6f" % (time.thread_time() - t0)
    sys.stdout.write(out + "\n"); sys.stdout.flush()
'''

WORKLOADS = ("alloc", "json")


def pythons(chosen):
    if chosen:
        return chosen
    base = os.path.expanduser("~/.pyenv/versions")
    return [os.path.join(base, v, "bin", "python3") for v in ("3.11.7", "3.13.0")
            if os.path.exists(os.path.join(base, v, "bin", "python3"))]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def med(v):
    return statistics.median(v) if v else float("nan")


def rng(v):
    return "%.3f-%.3f" % (min(v), max(v)) if v else "-"


class Target:
    def __init__(self, py, path, trm):
        self.trm = trm
        self.p = subprocess.Popen([py, path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True)
        assert self.p.stdout.readline().strip() == "ready"
        self.pid = self.p.pid

    def ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def trmtop(self, *args):
        r = subprocess.run([self.trm] + list(args) + ["--pid", str(self.pid)],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("trmtop %s: %s" % (" ".join(args), r.stderr))
        return r.stdout

    def run(self, work, cond, size, frames):
        if cond == "tracemalloc":
            self.ask("tm on")
        elif cond == "sampler":
            self.trmtop("start", "--sample=%s" % size, "--frames", str(frames))
        t = float(self.ask(work))
        if cond == "tracemalloc":
            self.ask("tm off")
        elif cond == "sampler":
            self.trmtop("stop")
        return t

    def holds(self, *args):
        """The agent's GIL hold (ms) of 5 live refreshes, and the rows."""
        r = subprocess.run([self.trm, "--pid", str(self.pid), "--batch", "--format", "json",
                            "--iterations", "5", "--interval", "200ms"] + list(args),
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("trmtop --pid: %s" % r.stderr)
        objs = [json.loads(l) for l in r.stdout.splitlines()]
        return [o["hold_ns"] / 1e6 for o in objs], objs[-1]["nrows"]

    def close(self):
        self.p.kill()
        self.p.wait()


def bench(py, trms, path, rounds, size, frames, with_tm):
    ver = subprocess.run([py, "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True).stdout.strip()
    targets = [(label, Target(py, path, trm)) for label, trm in trms]
    conds = ["untraced", "tracemalloc", "sampler"] if with_tm else ["untraced", "sampler"]
    ratios = {}
    try:
        for _, tg in targets:   # the agent loaded, the code warm
            tg.trmtop("stats")
            for w in WORKLOADS:
                tg.ask(w)
        for r in range(rounds):
            for label, tg in (targets if r % 2 == 0 else targets[::-1]):
                for w in WORKLOADS:
                    order = conds[r % len(conds):] + conds[:r % len(conds)]
                    t = {c: tg.run(w, c, size, frames) for c in order}
                    for c in conds[1:]:
                        ratios.setdefault((label, w, c), []).append(t[c] / t["untraced"])
                    print("  %s %s %s round %d: untraced %.3f s, %s" % (
                        ver, label, w, r + 1, t["untraced"],
                        ", ".join("%s %.3fx" % (c, t[c] / t["untraced"])
                                  for c in conds[1:])), flush=True)
        for label, tg in targets:
            for w in WORKLOADS:
                for c in conds[1:]:
                    v = ratios[(label, w, c)]
                    print("%s %s %-5s %-11s vs untraced: median %.3fx (%s)"
                          % (ver, label, w, c, med(v), rng(v)), flush=True)
            tg.trmtop("start", "--sample=%s" % size, "--frames", str(frames))
            for w in WORKLOADS + ("grow",):
                tg.ask(w)
            st = json.loads(tg.trmtop("stats", "--json"))
            sampled, srows = tg.holds("--sample")
            tg.trmtop("stop")
            tg.ask("drop")
            tg.ask("tm on")
            tg.ask("grow")
            exact, erows = tg.holds()
            tg.ask("tm off")
            tg.ask("drop")
            print("%s %s GIL hold of a live refresh, 2,000,000 objects live: sampled "
                  "median %.3f ms (longest %.3f, %d rows); exact median %.1f ms "
                  "(longest %.1f, %d rows) (goal: sampled <= 2 ms)"
                  % (ver, label, med(sampled), max(sampled), srows, med(exact),
                     max(exact), erows), flush=True)
            mem, rss = st["sample_memory"], st["rss"]
            print("%s %s sampler memory %.2f MiB, %d samples, RSS %.1f MiB: %.2f%% of "
                  "the RSS (goal: <= %.2f MiB, 1%% + 4 MiB)"
                  % (ver, label, mem / 2**20, st["samples"], rss / 2**20,
                     100.0 * mem / rss, (0.01 * rss + 4 * 2**20) / 2**20), flush=True)
    finally:
        for _, tg in targets:
            tg.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trmtop", action="append", default=[],
                    help="LABEL=PATH or PATH (default build/src/cli/trmtop)")
    ap.add_argument("--python", action="append", default=[])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", action="append", default=[],
                    help="sampler SIZE (default 512KiB); repeat for several")
    ap.add_argument("--frames", type=int, default=16)
    args = ap.parse_args()
    trms = []
    for t in args.trmtop or ["build/src/cli/trmtop"]:
        label, _, p = t.rpartition("=")
        trms.append((label or "trmtop", os.path.abspath(p)))
    print("load average before: %s" % loadavg(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "target.py")
        with open(path, "w") as f:
            f.write(TARGET)
        for k, size in enumerate(args.size or ["512KiB"]):
            print("sampler SIZE %s, %d frames" % (size, args.frames), flush=True)
            for py in pythons(args.python):
                bench(py, trms, path, args.rounds, size, args.frames, k == 0)
    print("load average after: %s" % loadavg(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
