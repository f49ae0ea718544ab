"""tmdump_check.py: the tracemalloc dump reader and writer against a real
interpreter.  Run under each interpreter (meson: one test per interpreter):

    python3.X tmdump_check.py TMDUMP_TOOL FIXTURES_DIR

For every fixture F.pickle (written by some Python version, expected
results in F.json):
  - read:      the C reader gives the traces and limit in F.json;
  - round trip: C reads F.pickle and writes it for this interpreter's
    version; Snapshot.load() here gives the traces of F.json and the same
    statistics('traceback') as the interpreter that wrote F.pickle;
    when the trace tuple layouts agree, the raw tuples are equal too.
Then a snapshot built in C (tmdump_tool synth), written for this version:
  Snapshot.load() gives the traces and the statistics the C model gives.
Prints TAP.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc

HAS_TOTAL = sys.hexversion >= 0x03090000
RESULTS = []


def check(name, fn):
    try:
        fn()
    except Exception as exc:  # report and go on with the next check
        RESULTS.append((False, name, "%s: %s" % (type(exc).__name__, exc)))
    else:
        RESULTS.append((True, name, ""))


def run_tool(tool, *args):
    proc = subprocess.run([tool] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise AssertionError("tmdump_tool %s: exit %d: %s" % (
            args[0], proc.returncode, proc.stderr.decode(errors="replace")))
    return proc.stdout.decode("utf-8")


def py_traces(snap):
    """[domain, size, frames most recent first, total_nframe or None]"""
    out = []
    for t in snap.traces:
        tb = t.traceback
        out.append([t.domain, t.size,
                    [[f.filename, f.lineno] for f in reversed(tb)],
                    getattr(tb, "total_nframe", None)])
    return out


def py_stats(snap):
    return [[st.size, st.count, [[f.filename, f.lineno]
                                 for f in st.traceback]]
            for st in snap.statistics("traceback")]


def norm_traces(traces, keep_total):
    """total_nframe None means 'not recorded': equal to the frame count."""
    out = []
    for domain, size, frames, total in traces:
        if total is None:
            total = len(frames)
        out.append([domain, size, [list(f) for f in frames],
                    total if keep_total else None])
    return out


def expect_equal(what, got, want):
    if got != want:
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                raise AssertionError("%s differ at %d: got %r, want %r"
                                     % (what, i, g, w))
        raise AssertionError("%s: got %d items, want %d"
                             % (what, len(got), len(want)))


def check_fixture(tool, pickle_path, tmpdir):
    with open(pickle_path[:-len(".pickle")] + ".json", encoding="utf-8") as f:
        want = json.load(f)
    src_total = want["hexversion"] >= 0x03090000

    def read():
        got = json.loads(run_tool(tool, "dump", pickle_path))
        if got["traceback_limit"] != want["traceback_limit"]:
            raise AssertionError("traceback_limit %r != %r" % (
                got["traceback_limit"], want["traceback_limit"]))
        expect_equal("traces", norm_traces(got["traces"], True),
                     norm_traces(want["traces"], True))
        expect_equal("C statistics",
                     [[s["size"], s["count"], s["frames"]]
                      for s in got["stats"]],
                     [[s["size"], s["count"], s["frames"]]
                      for s in want["stats"]])

    def round_trip():
        out = os.path.join(tmpdir, "rt.pickle")
        run_tool(tool, "convert", pickle_path, out, str(sys.hexversion))
        snap = tracemalloc.Snapshot.load(out)
        if snap.traceback_limit != want["traceback_limit"]:
            raise AssertionError("traceback_limit")
        keep = src_total and HAS_TOTAL
        expect_equal("traces", norm_traces(py_traces(snap), keep),
                     norm_traces(want["traces"], keep))
        expect_equal("statistics", py_stats(snap),
                     [[s["size"], s["count"], s["frames"]]
                      for s in want["stats"]])
        if src_total == HAS_TOTAL:
            orig = tracemalloc.Snapshot.load(pickle_path)
            if list(orig.traces._traces) != list(snap.traces._traces):
                raise AssertionError("raw trace tuples differ")
        if os.path.getsize(out) > os.path.getsize(pickle_path) + 64:
            raise AssertionError("written dump %d bytes, original %d" % (
                os.path.getsize(out), os.path.getsize(pickle_path)))

    base = os.path.basename(pickle_path)
    check("read %s" % base, read)
    check("round trip %s" % base, round_trip)


def check_synth(tool, tmpdir):
    out = os.path.join(tmpdir, "synth.pickle")
    c = json.loads(run_tool(tool, "synth", out, str(sys.hexversion)))
    snap = tracemalloc.Snapshot.load(out)
    if snap.traceback_limit != c["traceback_limit"]:
        raise AssertionError("traceback_limit")
    expect_equal("traces", norm_traces(py_traces(snap), HAS_TOTAL),
                 norm_traces(c["traces"], HAS_TOTAL))
    expect_equal("statistics", py_stats(snap),
                 [[s["size"], s["count"], s["frames"]] for s in c["stats"]])
    for t in snap.traces._traces:
        if len(t) != (4 if HAS_TOTAL else 3):
            raise AssertionError("trace tuple of %d items" % len(t))


def main():
    tool, fixtures = sys.argv[1], sys.argv[2]
    paths = sorted(glob.glob(os.path.join(fixtures, "*.pickle")))
    if not paths:
        print("1..0 # SKIP no fixtures in %s" % fixtures)
        return 0
    with tempfile.TemporaryDirectory() as tmpdir:
        for p in paths:
            check_fixture(tool, p, tmpdir)
        check("synthetic snapshot", lambda: check_synth(tool, tmpdir))
    print("1..%d" % len(RESULTS))
    for i, (ok, name, why) in enumerate(RESULTS, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if why:
            print("# " + why)
    return 0 if all(ok for ok, _, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
