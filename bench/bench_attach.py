"""Attach latency of trmtop vs the gdb method, and the target's pause.

Run: /usr/bin/python3 bench/bench_attach.py [--trmtop build/src/cli/trmtop] [-n 10]

For each interpreter (3.11 and 3.13 from pyenv, when present) and each
target shape (a CPU-loop main thread; a main thread blocked for ever in
join() while a worker spins), it measures:
  - trmtop: wall time of `trmtop stats --pid P` (process start to exit,
    which includes HELLO, one STATS round trip and the detach), and the
    time to HELLO as trmtop reports it with --verbose;
  - gdb: wall time of `gdb -p P -batch` calling PyGILState_Ensure,
    PyRun_SimpleString("pass"), PyGILState_Release (the classic method);
  - the target's largest gap between loop iterations while trmtop attaches
    (how long it was stopped, as seen by the target);
  - throughput after `trmtop start` + `trmtop stop` relative to the same
    loop before attaching.
Prints medians and ratios.  Not a test: nothing here asserts.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

GDB_TIMEOUT = 20

TARGET = r'''
import os, sys, threading, time, signal
shape = sys.argv[1]
maxgap = 0.0
count = 0
def report(signum, frame):
    global maxgap
    sys.stdout.write("%.6f %d\n" % (maxgap, count)); sys.stdout.flush()
    maxgap = 0.0
def spin():
    global maxgap, count
    last = time.perf_counter()
    while True:
        now = time.perf_counter()
        if now - last > maxgap:
            maxgap = now - last
        last = now
        count += 1
if shape == "cpu":
    signal.signal(signal.SIGUSR1, report)
    sys.stdout.write("ready\n"); sys.stdout.flush()
    spin()
else:
    t = threading.Thread(target=spin, daemon=True)
    t.start()
    sys.stdout.write("ready\n"); sys.stdout.flush()
    t.join()
'''


def pythons():
    found = []
    base = os.path.expanduser("~/.pyenv/versions")
    for v in ("3.11", "3.13"):
        for d in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            if d.startswith(v + "."):
                found.append((d, os.path.join(base, d, "bin", "python3")))
    return found


def start_target(py, shape, path):
    p = subprocess.Popen([py, path, shape], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def run_trmtop(trmtop, pid):
    t0 = time.perf_counter()
    r = subprocess.run([trmtop, "stats", "--pid", str(pid), "-v"],
                       capture_output=True, text=True)
    wall = (time.perf_counter() - t0) * 1e3
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    m = re.search(r"in ([0-9.]+) ms", r.stderr)
    return wall, float(m.group(1)) if m else float("nan")


def run_gdb(pid):
    cmd = ["gdb", "-p", str(pid), "-batch", "-nx",
           "-ex", "call (int)PyGILState_Ensure()",
           "-ex", 'call (int)PyRun_SimpleString("pass")',
           "-ex", "call (void)PyGILState_Release($1)"]
    t0 = time.perf_counter()
    try:
        subprocess.run(cmd, capture_output=True, text=True, timeout=GDB_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None  # gdb's call deadlocked (it stops every thread)
    return (time.perf_counter() - t0) * 1e3


def loop_rate(p, seconds=1.0):
    os.kill(p.pid, 10)
    a = int(p.stdout.readline().split()[1])
    time.sleep(seconds)
    os.kill(p.pid, 10)
    b = int(p.stdout.readline().split()[1])
    return (b - a) / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trmtop", default="build/src/cli/trmtop")
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--gdb-runs", type=int, default=3)
    args = ap.parse_args()
    have_gdb = shutil.which("gdb") is not None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "target.py")
        with open(path, "w") as f:
            f.write(TARGET)
        for name, py in pythons():
            for shape in ("cpu", "join"):
                p = start_target(py, shape, path)
                try:
                    walls, hellos, gaps = [], [], []
                    for _ in range(args.n):
                        if shape == "cpu":
                            os.kill(p.pid, 10)
                            p.stdout.readline()
                        w, h = run_trmtop(args.trmtop, p.pid)
                        walls.append(w)
                        hellos.append(h)
                        if shape == "cpu":
                            os.kill(p.pid, 10)
                            gaps.append(float(p.stdout.readline().split()[0]) * 1e3)
                    gdbs = [run_gdb(p.pid) for _ in range(args.gdb_runs)] if have_gdb else []
                    line = ("%-8s %-4s trmtop stats: median %.1f ms (to HELLO %.1f ms)"
                            % (name, shape, statistics.median(walls),
                               statistics.median(hellos)))
                    ok = [g for g in gdbs if g is not None]
                    if ok:
                        line += "; gdb: median %.0f ms; ratio %.0fx" % (
                            statistics.median(ok),
                            statistics.median(ok) / statistics.median(walls))
                    if len(ok) < len(gdbs):
                        line += "; gdb: %d of %d runs hung > %d s" % (
                            len(gdbs) - len(ok), len(gdbs), GDB_TIMEOUT)
                    if gaps:
                        line += "; target's largest loop gap: median %.2f ms, max %.2f ms" % (
                            statistics.median(gaps), max(gaps))
                    print(line, flush=True)
                    if shape == "cpu":
                        before = loop_rate(p)
                        subprocess.run([args.trmtop, "start", "--pid", str(p.pid)],
                                       capture_output=True, check=True)
                        subprocess.run([args.trmtop, "stop", "--pid", str(p.pid)],
                                       capture_output=True, check=True)
                        after = loop_rate(p)
                        print("%-8s %-4s throughput after start+stop / before: %.3f"
                              % (name, shape, after / before), flush=True)
                finally:
                    p.kill()
                    p.wait()


if __name__ == "__main__":
    sys.exit(main())
