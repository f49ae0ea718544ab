"""Attach latency of trmtop vs the gdb method, and the target's pause.

Run: /usr/bin/python3 bench/bench_attach.py [--trmtop build/src/cli/trmtop] [-n 10]

For each interpreter (3.11 and 3.13 from pyenv, when present) and each
target shape (a CPU-loop main thread; a main thread blocked for ever in
join() while a worker spins), it measures:
  - trmtop: the time from the start of the attach to the agent's HELLO
    and how long a thread of the target was held by ptrace, as trmtop
    reports them with --verbose, and the wall time of `trmtop stats --pid
    P` (process start to exit: HELLO, one STATS round trip, the detach);
    each for a first attach (a fresh target, the agent gets loaded) and a
    second one (the agent is loaded: a reconnect);
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
    m = re.search(r"in ([0-9.]+) ms \(a thread held ([0-9.]+) ms\)", r.stderr)
    if not m:
        return wall, float("nan"), float("nan")
    return wall, float(m.group(1)), float(m.group(2))


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


def med(v):
    return statistics.median(v) if v else float("nan")


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
                # first attaches (a fresh target each: the agent is loaded),
                # then reconnects (the agent is there already)
                first = {"wall": [], "hello": [], "held": [], "gap": []}
                again = {"wall": [], "hello": [], "held": [], "gap": []}
                for _ in range(args.n):
                    p = start_target(py, shape, path)
                    try:
                        for acc in (first, again):
                            if shape == "cpu":
                                os.kill(p.pid, 10)
                                p.stdout.readline()
                            w, h, held = run_trmtop(args.trmtop, p.pid)
                            acc["wall"].append(w)
                            acc["hello"].append(h)
                            acc["held"].append(held)
                            if shape == "cpu":
                                os.kill(p.pid, 10)
                                acc["gap"].append(float(p.stdout.readline().split()[0]) * 1e3)
                    finally:
                        p.kill()
                        p.wait()
                gdbs = []
                for _ in range(args.gdb_runs if have_gdb else 0):
                    p = start_target(py, shape, path)
                    try:
                        gdbs.append(run_gdb(p.pid))
                    finally:
                        p.kill()
                        p.wait()
                ok = [g for g in gdbs if g is not None]
                for label, acc in (("first", first), ("again", again)):
                    line = ("%-8s %-4s %-5s to HELLO %.2f ms, thread held %.2f ms, "
                            "trmtop stats wall %.1f ms"
                            % (name, shape, label, med(acc["hello"]), med(acc["held"]),
                               med(acc["wall"])))
                    if acc["gap"]:
                        line += ", target's largest loop gap %.2f ms (max %.2f)" % (
                            med(acc["gap"]), max(acc["gap"]))
                    if ok:
                        line += "; gdb %.0f ms: %.0fx to HELLO, %.0fx wall" % (
                            med(ok), med(ok) / med(acc["hello"]), med(ok) / med(acc["wall"]))
                    print(line, flush=True)
                if len(ok) < len(gdbs):
                    print("%-8s %-4s gdb: %d of %d runs hung > %d s" % (
                        name, shape, len(gdbs) - len(ok), len(gdbs), GDB_TIMEOUT))
                if shape == "cpu":
                    p = start_target(py, shape, path)
                    try:
                        before = loop_rate(p)
                        subprocess.run([args.trmtop, "start", "--pid", str(p.pid)],
                                       capture_output=True, check=True)
                        subprocess.run([args.trmtop, "stop", "--pid", str(p.pid)],
                                       capture_output=True, check=True)
                        after = loop_rate(p)
                    finally:
                        p.kill()
                        p.wait()
                    print("%-8s %-4s throughput after start+stop / before: %.3f"
                          % (name, shape, after / before), flush=True)


if __name__ == "__main__":
    sys.exit(main())
