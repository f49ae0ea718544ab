"""The cost of being watched by the live view (`trmtop --pid`), issue 11.

Run: /usr/bin/python3 bench/bench_live.py [--trmtop build/src/cli/trmtop]
         [--rounds 4] [--window 10] [--long-rounds 3] [--long-window 24]
         [--first-runs 5] [--python PATH]...

For each interpreter (3.11.7 and 3.13.0 from pyenv by default; --python
to choose), targets started with tracemalloc.start(1) by themselves
allocate --blocks live blocks (100,000 and 1,000,000 by default) from 50
lines, then loop creating and dropping small objects, counting their
iterations; on SIGUSR1 a target writes its count and its own clock.

Twin targets run at once, so that the load of the shared machine falls on
both (measuring one target's windows one after the other read 0.68-1.75 on
a machine that others were using).  After a warm-up `trmtop stats` on each
(the agent is loaded in both), each round has two windows: twin A watched
while B is not, then B watched while A is not (the order alternates from
round to round); the round's ratio is the geometric mean of the two
windows' watched/unwatched rates, so that a difference between the twins
cancels.  Watched: `trmtop --pid P --batch --interval 2s --format json`;
the window starts when its first refresh is on stdout (the attach and the
first snapshot are measured in (4)) and ends with SIGTERM.  It prints, per
round and as medians with the range:
  (1)/(2) the target's iterations per second watched / unwatched;
      the effective interval the view reached (effective_interval_ms of
      its JSON), the agent's GIL hold per refresh (hold_ns) and the part
      of the window the target was held (hold_ns of the refreshes in it);
  (3) trmtop's own CPU (utime+stime of /proc/PID/stat) over the window, in
      % of one core, and over its whole life (wait4), and the CPU of the
      watched target's agent thread (every thread but the main one) over
      the window;
  (4) with 10,000 blocks, on a fresh target (first: the agent is loaded)
      and again (a reconnect): the time from launching `trmtop --pid P
      --batch --iterations 1 -v` to the end of its first full text table
      on stdout, and the attach part (`-v`: "attached ... in N ms").
Also the load average before and after.  Not a test: nothing here asserts.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TARGET = r'''
import signal, sys, time, tracemalloc
blocks = int(sys.argv[1])
tracemalloc.start(1)
KEEP = []
per = blocks // 50
'''
for i in range(50):
    TARGET += "def site%d(n):\n    KEEP.extend([bytes(%d + (j & 7)) for j in range(n)])\n" % (i, 16 + i)
TARGET += r'''
for i in range(50):
    globals()["site%d" % i](per)
count = 0
def report(signum, frame):
    sys.stdout.write("%d %.6f\n" % (count, time.perf_counter()))
    sys.stdout.flush()
signal.signal(signal.SIGUSR1, report)
def churn():
    global count
    while True:
        x = [j for j in range(4)]
        y = {"k": x, "n": count}
        del x, y
        count += 1
sys.stdout.write("ready\n"); sys.stdout.flush()
churn()
'''

TICK = os.sysconf("SC_CLK_TCK")


def pythons(chosen):
    if chosen:
        out = []
        for py in chosen:
            v = subprocess.run([py, "-c", "import platform; print(platform.python_version())"],
                               capture_output=True, text=True, check=True).stdout.strip()
            out.append((v + ("" if "/.pyenv/" in py else " (%s)" % py), py))
        return out
    base = os.path.expanduser("~/.pyenv/versions")
    out = []
    for v in ("3.11.7", "3.13.0"):
        py = os.path.join(base, v, "bin", "python3")
        if os.path.exists(py):
            out.append((v, py))
    return out


def cpu_s(path):
    """utime+stime of /proc/.../stat, seconds."""
    with open(path) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def agent_cpu_s(pid):
    """CPU of every thread of pid but the main one (the agent's)."""
    total = 0.0
    for tid in os.listdir("/proc/%d/task" % pid):
        if int(tid) != pid:
            try:
                total += cpu_s("/proc/%d/task/%s/stat" % (pid, tid))
            except OSError:
                pass
    return total


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Target:
    def __init__(self, py, path, blocks):
        self.p = subprocess.Popen([py, path, str(blocks)], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        assert self.p.stdout.readline().strip() == "ready"
        self.pid = self.p.pid

    def sample(self):
        """(count, the target's clock) as the target reports them."""
        os.kill(self.pid, signal.SIGUSR1)
        c, t = self.p.stdout.readline().split()
        return int(c), float(t)

    def close(self):
        self.p.kill()
        self.p.wait()


def rate(a, b):
    return (b[0] - a[0]) / (b[1] - a[1])


class Watcher:
    """`trmtop --pid P --batch --interval I --format json`, its JSON lines
    read as they come; ready when its first refresh is on stdout."""

    def __init__(self, trm, pid, interval):
        self.t_launch = time.perf_counter()
        self.p = subprocess.Popen([trm, "--pid", str(pid), "--batch", "--interval",
                                   interval, "--format", "json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.objs = []
        first = threading.Event()

        def reader():
            for line in self.p.stdout:
                self.objs.append((time.perf_counter(), json.loads(line)))
                first.set()
            first.set()

        self.th = threading.Thread(target=reader, daemon=True)
        self.th.start()
        first.wait()
        if not self.objs:
            self.p.wait()
            raise RuntimeError("trmtop: %s" % self.p.stderr.read())
        self.stat = "/proc/%d/stat" % self.p.pid

    def cpu(self):
        return cpu_s(self.stat)

    def end(self):
        self.p.send_signal(signal.SIGTERM)
        err = self.p.stderr.read()
        _, status, ru = os.wait4(self.p.pid, 0)
        life = time.perf_counter() - self.t_launch
        self.th.join()
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 143):
            raise RuntimeError("trmtop exited %d: %s" % (code, err))
        return (ru.ru_utime + ru.ru_stime) / life * 100


def window(trm, watched, other, seconds, interval):
    """One window: watched under trmtop, other (its twin) not, at once."""
    w = Watcher(trm, watched.pid, interval)
    t0, c0, g0 = time.perf_counter(), w.cpu(), agent_cpu_s(watched.pid)
    a, ao = watched.sample(), other.sample()
    time.sleep(seconds)
    b, bo = watched.sample(), other.sample()
    t1, c1, g1 = time.perf_counter(), w.cpu(), agent_cpu_s(watched.pid)
    inside = [o for t, o in w.objs if t0 < t <= t1]
    life = w.end()
    return {
        "watched": rate(a, b),
        "unwatched": rate(ao, bo),
        "cpu": (c1 - c0) / (t1 - t0) * 100,
        "cpu_life": life,
        "agent_cpu": (g1 - g0) / (t1 - t0) * 100,
        "held": sum(o["hold_ns"] for o in inside) / 1e9 / (t1 - t0) * 100,
        "eff_ms": w.objs[-1][1]["effective_interval_ms"],
        "hold_ms": med([o["hold_ns"] for _, o in w.objs]) / 1e6,
        "first_hold_ms": w.objs[0][1]["hold_ns"] / 1e6,
        "blocks": w.objs[-1][1]["blocks"],
        "refreshes": len(inside),
    }


def med(v):
    return statistics.median(v) if v else float("nan")


def rng(v, fmt="%.3f"):
    return (fmt + "-" + fmt) % (min(v), max(v)) if v else "-"


def throughput(trm, name, py, path, blocks, rounds, seconds, interval):
    twins = [Target(py, path, blocks), Target(py, path, blocks)]
    try:
        for tg in twins:
            subprocess.run([trm, "stats", "--pid", str(tg.pid)], capture_output=True,
                           check=True)
        time.sleep(1.0)
        ratios, ws = [], []
        for r in range(rounds):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            res = []
            for k in order:
                res.append(window(trm, twins[k], twins[1 - k], seconds, interval))
                time.sleep(0.5)
            # the geometric mean of the two windows' ratios: each twin
            # watched once, against the other at the same time
            ratio = ((res[0]["watched"] / res[0]["unwatched"])
                     * (res[1]["watched"] / res[1]["unwatched"])) ** 0.5
            ratios.append(ratio)
            ws.extend(res)
            print("  %s %8d blocks round %d: watched/unwatched %.0f/%.0f, %.0f/%.0f per s, "
                  "ratio %.3f; effective interval %d, %d ms; hold per refresh %.1f, %.1f ms "
                  "(first %.1f, %.1f); held %.2f, %.2f%% of the window; trmtop CPU %.2f, "
                  "%.2f%% (life %.2f, %.2f%%), agent thread %.2f, %.2f%%; load %s"
                  % (name, res[0]["blocks"], r + 1, res[0]["watched"], res[0]["unwatched"],
                     res[1]["watched"], res[1]["unwatched"], ratio,
                     res[0]["eff_ms"], res[1]["eff_ms"], res[0]["hold_ms"], res[1]["hold_ms"],
                     res[0]["first_hold_ms"], res[1]["first_hold_ms"],
                     res[0]["held"], res[1]["held"], res[0]["cpu"], res[1]["cpu"],
                     res[0]["cpu_life"], res[1]["cpu_life"], res[0]["agent_cpu"],
                     res[1]["agent_cpu"], loadavg()), flush=True)
        print("%s %d blocks: throughput watched/unwatched median %.3f (%s); "
              "effective interval %s ms; hold per refresh %.1f ms; target held %.2f%% "
              "of the window (%s); trmtop CPU %.2f%% of a core (%s; whole life %.2f%%); "
              "agent thread %.2f%%"
              % (name, ws[0]["blocks"], med(ratios), rng(ratios),
                 rng([w["eff_ms"] for w in ws], "%d"), med([w["hold_ms"] for w in ws]),
                 med([w["held"] for w in ws]), rng([w["held"] for w in ws], "%.2f"),
                 med([w["cpu"] for w in ws]), rng([w["cpu"] for w in ws], "%.2f"),
                 med([w["cpu_life"] for w in ws]), med([w["agent_cpu"] for w in ws])),
              flush=True)
    finally:
        for tg in twins:
            tg.close()


def first_table(trm, pid, interval):
    """ms from launch to the end of the first text block; attach ms (-v)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([trm, "--pid", str(pid), "--batch", "--iterations", "1",
                          "--interval", interval, "-v"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    blank = 0
    for line in p.stdout:
        if line == "\n":
            blank += 1
            if blank == 2:  # after the header, after the table
                break
    t1 = time.perf_counter()
    p.stdout.read()
    err = p.stderr.read()
    if p.wait() != 0:
        raise RuntimeError("trmtop exited %d: %s" % (p.returncode, err))
    m = re.search(r"attached to \d+ by .* in ([0-9.]+) ms", err)
    return (t1 - t0) * 1e3, float(m.group(1)) if m else float("nan")


def startup(trm, name, py, path, runs, interval):
    acc = {"first": ([], []), "again": ([], [])}
    for _ in range(runs):
        tg = Target(py, path, 10000)
        try:
            for k in ("first", "again"):
                tot, att = first_table(trm, tg.pid, interval)
                acc[k][0].append(tot)
                acc[k][1].append(att)
        finally:
            tg.close()
    for k, (tot, att) in acc.items():
        print("%s 10000 blocks, %s: launch to first table %.1f ms (%s), "
              "of which attach %.2f ms (%s)"
              % (name, k, med(tot), rng(tot, "%.1f"), med(att), rng(att, "%.2f")),
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trmtop", default="build/src/cli/trmtop")
    ap.add_argument("--python", action="append", default=[])
    ap.add_argument("--blocks", type=int, action="append", default=[])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--window", type=float, default=10.0,
                    help="seconds per window, 100,000 blocks")
    ap.add_argument("--long-rounds", type=int, default=3)
    ap.add_argument("--long-window", type=float, default=24.0,
                    help="seconds per window, 1,000,000 blocks (the interval stretches)")
    ap.add_argument("--interval", default="2s")
    ap.add_argument("--first-runs", type=int, default=5)
    args = ap.parse_args()
    trm = os.path.abspath(args.trmtop)
    t_start = time.time()
    print("load average before: %s" % loadavg(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "target.py")
        with open(path, "w") as f:
            f.write(TARGET)
        for name, py in pythons(args.python):
            if args.first_runs:
                startup(trm, name, py, path, args.first_runs, args.interval)
            for blocks in args.blocks or [100000, 1000000]:
                long = blocks >= 1000000
                if not (args.long_rounds if long else args.rounds):
                    continue  # --rounds 0 / --long-rounds 0: not measured
                throughput(trm, name, py, path, blocks,
                           args.long_rounds if long else args.rounds,
                           args.long_window if long else args.window, args.interval)
    print("load average after: %s; %.0f s in all" % (loadavg(), time.time() - t_start))


if __name__ == "__main__":
    sys.exit(main())
