"""Sampled live refreshes with many tracebacks: the bytes the agent sends
per refresh and how long it holds the GIL, issue 12 ("only the changed
rows", wire minor 3).

Run: /usr/bin/python3 bench/bench_table.py [--trmtop LABEL=PATH]...
         [--python PATH] [--lines 5000] [--churn 20] [--iterations 10]
         [--interval 500ms] [--size 4KiB]

For each trmtop (--trmtop, default build/src/cli/trmtop; give two, e.g.
old=... new=..., to compare agents in the same run) a fresh target
(python3.11 from pyenv by default) compiles LINES generated functions,
each on a line of its own, starts trmtop's sampler (`trmtop start --pid P
--sample=SIZE --frames 1`), then allocates and keeps 16 KiB from each
function (at 4 KiB, about 4 samples a line: a table of LINES rows), and
from then on, on its main thread, keeps calling CHURN of the functions
(allocated and dropped at once), 200 times a second.  The live view
(`trmtop --pid P --batch --sample --format json --iterations N`) then
refreshes N times; for each refresh it prints the agent's GIL hold
(hold_ns of the JSON) and the bytes the target wrote meanwhile (wchar of
/proc/P/io: the target writes nothing else than the agent's replies),
read when the refresh's line comes out.  The first refresh (the whole
table either way) is shown apart; the medians are of the others.  Not a
test: nothing here asserts.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

TARGET = r'''
import sys, time
LINES = int(sys.argv[1])
CHURN = int(sys.argv[2])
src = "".join("def f%d(): return [bytes(2048) for _ in range(8)]\n" % i
              for i in range(LINES))
ns = {}
exec(compile(src, "<generated>", "exec"), ns)
fs = [ns["f%d" % i] for i in range(LINES)]
sys.stdout.write("compiled\n")
sys.stdout.flush()
sys.stdin.readline()            # the sampler runs
KEEP = [f() for f in fs]
sys.stdout.write("built\n")
sys.stdout.flush()
k = 0
while True:
    for _ in range(CHURN):
        fs[k % LINES]()
        k += 7919
    time.sleep(0.005)
'''


def wchar(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


def run(label, trmtop, args):
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(TARGET)
        script = f.name
    t = subprocess.Popen([args.python, script, str(args.lines), str(args.churn)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         universal_newlines=True)
    try:
        assert t.stdout.readline() == "compiled\n"
        r = subprocess.run([trmtop, "start", "--pid", str(t.pid),
                            "--sample=" + args.size, "--frames", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert r.returncode == 0, r
        t.stdin.write("go\n")
        t.stdin.flush()
        assert t.stdout.readline() == "built\n"
        lv = subprocess.Popen([trmtop, "--pid", str(t.pid), "--batch", "--sample",
                               "--format", "json", "--iterations", str(args.iterations),
                               "--interval", args.interval],
                              stdout=subprocess.PIPE, universal_newlines=True)
        before = wchar(t.pid)
        rows = []
        for line in lv.stdout:
            now = wchar(t.pid)
            o = json.loads(line)
            rows.append((o["hold_ns"], now - before, o["nrows"]))
            before = now
        lv.wait()
        subprocess.run([trmtop, "stop", "--pid", str(t.pid)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        t.kill()
        t.wait()
        os.unlink(script)
    first, rest = rows[0], rows[1:]
    print("%s: first refresh: hold %.2f ms, %d bytes; then (median of %d, range): "
          "hold %.3f ms (%.3f-%.3f), %d bytes (%d-%d); rows shown %d"
          % (label, first[0] / 1e6, first[1], len(rest),
             statistics.median(r[0] for r in rest) / 1e6,
             min(r[0] for r in rest) / 1e6, max(r[0] for r in rest) / 1e6,
             statistics.median(r[1] for r in rest),
             min(r[1] for r in rest), max(r[1] for r in rest), rest[-1][2]))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trmtop", action="append", default=[])
    ap.add_argument("--python", default=os.path.expanduser(
        "~/.pyenv/versions/3.11.7/bin/python3"))
    ap.add_argument("--lines", type=int, default=5000)
    ap.add_argument("--churn", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--interval", default="500ms")
    ap.add_argument("--size", default="4KiB")
    args = ap.parse_args()
    tools = args.trmtop or ["build/src/cli/trmtop"]
    print("load average: %s" % open("/proc/loadavg").read().strip())
    for spec in tools:
        label, _, path = spec.rpartition("=")
        run(label or path, path, args)
    print("load average: %s" % open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
