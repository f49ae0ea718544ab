"""trmtop snapshot against the target's own tracemalloc, exactly.

The workload target (tests/targets/workload.py) allocates from many lines
and call paths, then goes quiescent.  The test takes a trmtop snapshot of it
and then has the target dump its own tracemalloc.take_snapshot() (`dump`,
tests/targets/_common.py).  In this order, everything the attach left behind
is there for both; what may differ is only what was alive in between:

* the command handling of `dump` (_common.py frames),
* tracemalloc.py's own allocations,
* the attach: trmtop's bootstrap (`<trmtop-bootstrap>`, `<string>`, also
  as older frames of importlib's, e.g. the agent's import of atexit) and
  the agent's thread (`<unknown>`: no Python frame).

A trace with any of those frames is dropped on both sides (EXCLUDE, with
--all-frames / all_frames=True); the workload runs FRAMES frames below its
caller, so that this drops none of its own traces.  Then `trmtop top` must
give the same rows as the interpreter's own Snapshot.statistics() for every
key and both cumulative settings: same order, sizes, counts and frames.

The interpreter's side is computed by TM_HELPER, run under the target's
interpreter on the dump (or on trmtop's export of its snapshot).
"""

import json
import os
import re
import socket
import struct
import subprocess
import time

import pytest

from conftest import EXIT_CODE, TARGETS, run_trmtop
from leb128 import decode as leb128_decode

FRAMES = 4  # tests/targets/workload.py FRAMES
WORKLOAD = os.path.join(TARGETS, "workload.py")
GENERATED = ("/nonexistent/trmtop-gen/alpha.py", "/nonexistent/trmtop-gen/beta.py")

EXCLUDE = ("<trmtop-bootstrap>", "<string>", "<unknown>", "*/tracemalloc.py", "*/_common.py")
QUERIES = (("lineno", False), ("lineno", True), ("filename", False), ("filename", True),
           ("traceback", False))

# (trmtop options, [Filter arguments]) for comparisons on a fixed file.
# A Filter argument list is (inclusive, pattern, lineno, all_frames) or
# ("domain", inclusive, domain).
FILTER_CASES = {
    "none": ([], []),
    "exclude-recent": (["--exclude", "*/_common.py", "--exclude", "*/tracemalloc.py",
                        "--exclude", "<*>"],
                       [(False, "*/_common.py", None, False), (False, "*/tracemalloc.py", None, False),
                        (False, "<*>", None, False)]),
    "include-line": (["--include", "*/workload.py:LEAF-BYTES", "--include", "*/alpha.py"],
                     [(True, "*/workload.py", "LEAF-BYTES", False), (True, "*/alpha.py", None, False)]),
    "include-all-frames": (["--include", "*/workload.py", "--all-frames"],
                           [(True, "*/workload.py", None, True)]),
    "exclude-all-frames": (["--exclude", "*/workload.py", "--exclude", "*/threading.py", "--all-frames"],
                           [(False, "*/workload.py", None, True), (False, "*/threading.py", None, True)]),
    "exclude-line": (["--exclude", "*/workload.py:RECURSE-LEAF"],
                     [(False, "*/workload.py", "RECURSE-LEAF", False)]),
    "domain-0": (["--domain", "0"], [("domain", True, 0)]),
    "exclude-domain-0": (["--exclude-domain", "0"], [("domain", False, 0)]),
}

TM_HELPER = r"""
import json, sys, tracemalloc
spec = json.loads(sys.argv[1])
snap = tracemalloc.Snapshot.load(spec["file"])
out = {"traceback_limit": snap.traceback_limit, "ntraces": len(snap.traces), "results": []}
for q in spec["queries"]:
    s = snap
    if q["filters"]:
        flt = []
        for f in q["filters"]:
            if f[0] == "domain":
                flt.append(tracemalloc.DomainFilter(f[1], f[2]))
            else:
                flt.append(tracemalloc.Filter(f[0], f[1], f[2], f[3]))
        s = snap.filter_traces(flt)
    rows = [[st.size, st.count, [[fr.filename, fr.lineno] for fr in st.traceback]]
            for st in s.statistics(q["key"], q["cumulative"])]
    out["results"].append({"rows": rows, "total": [sum(t.size for t in s.traces), len(s.traces)]})
sys.stdout.write(json.dumps(out))
"""


def marked_lines(path=WORKLOAD):
    """{"NAME": lineno} of the lines ending in a `   # NAME` marker."""
    out = {}
    with open(path) as f:
        for no, text in enumerate(f, 1):
            m = re.search(r"   # ([A-Z][A-Z-]+)$", text.rstrip())
            if m:
                assert m.group(1) not in out, "marker %s twice" % m.group(1)
                out[m.group(1)] = no
    return out


MARKS = marked_lines()


def _resolve_marks(args):
    """Replaces a marker name after ':' in a --include/--exclude GLOB:LINE."""
    out = []
    for a in args:
        m = re.match(r"^(.*):([A-Z][A-Z-]+)$", a)
        out.append("%s:%d" % (m.group(1), MARKS[m.group(2)]) if m else a)
    return out


def _resolve_filters(filters):
    return [list(f[:2]) + [MARKS[f[2]] if isinstance(f[2], str) else f[2]] + list(f[3:])
            if f[0] != "domain" else list(f) for f in filters]


def tm_stats(python, path, queries, filters=()):
    """The interpreter's own statistics of the dump at path: one
    {"rows": [[size, count, [[filename, lineno], ...]]], "total": [size,
    count]} per (key, cumulative) of queries, plus "traceback_limit"."""
    spec = {"file": path, "queries": [{"key": k, "cumulative": c, "filters": _resolve_filters(filters)}
                                      for k, c in queries]}
    res = subprocess.run([python.path, "-E", "-c", TM_HELPER, json.dumps(spec)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=120)
    assert res.returncode == 0, "Snapshot.load/statistics of %s under %s failed: %s" % (
        path, python.id, res.stderr.decode(errors="replace"))
    return json.loads(res.stdout.decode())


def top_rows(path, key, cumulative, opts=()):
    """trmtop top --format json --limit 0: (rows, (total_size, total_count))
    in the form of tm_stats."""
    args = ["top", path, "--format", "json", "--limit", "0", "--group-by", key]
    if cumulative:
        args.append("--cumulative")
    res = run_trmtop(*(args + _resolve_marks(opts)))
    assert res.rc == 0, res
    j = res.json()
    assert j["key"] == key and j["cumulative"] == cumulative, res
    other = j.get("other") or {}
    assert not other.get("entries") and not other.get("size") and not other.get("count"), (
        "--limit 0 left rows in 'other': %r" % other)
    ranks = [s["rank"] for s in j["stats"]]
    assert ranks == list(range(1, len(ranks) + 1)), ranks
    rows = [[s["size"], s["count"], [[f["filename"], f["lineno"]] for f in s["frames"]]] for s in j["stats"]]
    return rows, [j["total_size"], j["total_count"]]


def _fmt(row):
    """A row [size, count, frames] or [size, size_diff, frames, count,
    count_diff], most recent frame first."""
    where = " <- ".join("%s:%d" % (os.path.basename(f), l) for f, l in reversed(row[2]))
    if len(row) == 5:
        return "size=%d (%+d) count=%d (%+d) %s" % (row[0], row[1], row[3], row[4], where)
    return "size=%d count=%d %s" % (row[0], row[1], where)


def assert_same_rows(got, want, what):
    """Ordered, exact comparison with a readable first difference."""
    if got == want:
        return
    i = 0
    while i < min(len(got), len(want)) and got[i] == want[i]:
        i += 1
    lines = ["%s: trmtop gives %d rows, tracemalloc %d; first difference at row %d:"
             % (what, len(got), len(want), i + 1)]
    for name, rows in (("trmtop", got), ("tracemalloc", want)):
        lines.append("  %s:" % name)
        lines.extend("    #%d %s" % (j + 1, _fmt(r)) for j, r in enumerate(rows[i:i + 6], i))
    gs = set(json.dumps(r) for r in got)
    ws = set(json.dumps(r) for r in want)
    only_g = [r for r in got if json.dumps(r) not in ws][:8]
    only_w = [r for r in want if json.dumps(r) not in gs][:8]
    if only_g or only_w:
        lines.append("  only in trmtop: " + "; ".join(_fmt(r) for r in only_g))
        lines.append("  only in tracemalloc: " + "; ".join(_fmt(r) for r in only_w))
    else:
        lines.append("  same rows, different order")
    pytest.fail("\n".join(lines))


def compare_top(python, trm, dump, opts, filters, what, queries=QUERIES):
    """trmtop top of trm with opts == the interpreter's statistics of dump
    with filters, for every query."""
    want = tm_stats(python, dump, queries, filters)
    for (key, cum), w in zip(queries, want["results"]):
        rows, total = top_rows(trm, key, cum, opts)
        label = "%s, %s%s" % (what, key, " cumulative" if cum else "")
        assert_same_rows(rows, w["rows"], label)
        assert total == w["total"], "%s: total (size, count) %r, tracemalloc %r" % (label, total, w["total"])
    return want


def exclude_opts():
    opts = []
    for p in EXCLUDE:
        opts += ["--exclude", p]
    return opts + ["--all-frames"]


def exclude_filters():
    return [(False, p, None, True) for p in EXCLUDE]


def snapshot(pid, out, *opts):
    res = run_trmtop("snapshot", "--pid", pid, "-o", out, *opts)
    assert res.rc == 0, res
    assert os.path.getsize(out) > 0
    return res


# ---------------------------------------------------------------------------
# The workload, snapshotted both ways (once per interpreter and mode)

_runs = {}


class Run(object):
    """trm: trmtop's snapshot; dump: the target's own, taken right after;
    pid, t0/t1: time.time_ns() around the trmtop snapshot; truth: the
    target's tracemalloc state afterwards."""


def workload_run(python, mode, spawn, tmp_path_factory):
    key = (python.id, mode)
    if key in _runs:
        if _runs[key] is None:
            pytest.skip("the %s workload run of %s failed in an earlier test" % (mode, python.id))
        return _runs[key]
    _runs[key] = None
    d = str(tmp_path_factory.mktemp("workload-%s-%s" % (python.id, mode)))
    r = Run()
    t = spawn(python, "workload", args=[mode])
    if mode == "late":
        assert t.truth()["tracing"] is False
        # trmtop turns tracing on (and leaves it on); then the workload runs.
        snapshot(t.pid, os.path.join(d, "start.trm"), "--frames", FRAMES, "--keep-tracing",
                 "--duration", "0")
        truth = t.truth()
        assert truth["tracing"] is True and truth["limit"] == FRAMES, truth
        t.ok("run")
    else:
        # The first attach loads the agent, which imports atexit: on 3.8-3.10
        # that leaves cyclic garbage (importlib's module locks), alive in that
        # snapshot until a collection, under importlib frames only (the
        # bootstrap's are beyond the limit).  Attach once before, collect.
        snapshot(t.pid, os.path.join(d, "first.trm"))
    assert re.match(r"^\d+$", t.cmd("collect"))
    # Once through the whole `dump` path first: its one-time allocations
    # (frames cached by code objects, copyreg's __slotnames__, ...) are then
    # made before either snapshot.
    t.ok("dump %s" % os.path.join(d, "warm.pickle"))
    r.trm = os.path.join(d, "app.trm")
    r.dump = os.path.join(d, "truth.pickle")
    r.t0 = time.time_ns()
    r.summary = snapshot(t.pid, r.trm, "--keep-tracing" if mode == "late" else "--frames=7").out
    r.t1 = time.time_ns()
    t.ok("dump %s" % r.dump)
    r.truth = t.truth()
    r.pid = t.pid
    r.dir = d
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.stderr == b"", t.stderr
    _runs[key] = r
    return r


@pytest.mark.parametrize("mode", ["app", "late"])
def test_exact(python, mode, spawn, tmp_path_factory):
    """trmtop snapshot == in-process take_snapshot(), every key, both
    cumulative settings, after dropping the attach's and the dump's own
    traces on both sides."""
    r = workload_run(python, mode, spawn, tmp_path_factory)
    # The application's limit is kept; trmtop's --frames does not apply.
    assert r.truth["tracing"] is True and r.truth["limit"] == FRAMES, r.truth
    want = compare_top(python, r.trm, r.dump, exclude_opts(), exclude_filters(),
                       "%s snapshot vs in-process dump" % mode)
    assert want["traceback_limit"] == FRAMES

    # The comparison covers what it should: the marked lines, both generated
    # files, and the two tied lines next to each other in traceback order.
    lineno = {(os.path.basename(fr[0][0]), fr[0][1]): (size, count)
              for size, count, fr in want["results"][0]["rows"]}
    ws = [l for f, l in lineno if f == "workload.py"]
    assert len(ws) >= 20, sorted(ws)
    for name, no in MARKS.items():
        assert ("workload.py", no) in lineno, "marked line %s (%d) not in the statistics" % (name, no)
    for g in GENERATED:
        assert any(f == os.path.basename(g) for f, _ in lineno), g
    a, b = MARKS["TIE-A"], MARKS["TIE-B"]
    assert lineno[("workload.py", a)] == lineno[("workload.py", b)]
    rows = [(os.path.basename(fr[0][0]), fr[0][1]) for _, _, fr in want["results"][0]["rows"]]
    # statistics() sorts (size, count, traceback) in reverse: B before A
    assert rows.index(("workload.py", b)) + 1 == rows.index(("workload.py", a)), rows

    # Recursion deeper than the limit: the leaf's tracebacks are cut to
    # FRAMES frames, all of them in recurse().
    tb_rows = want["results"][4]["rows"]
    leaf = [fr for _, _, fr in tb_rows if fr[-1] == [WORKLOAD, MARKS["RECURSE-LEAF"]]]
    assert leaf and all(len(fr) == FRAMES for fr in leaf), leaf
    assert max(len(fr) for _, _, fr in tb_rows) == FRAMES


def test_export_tracemalloc(python, spawn, tmp_path_factory, tmp_path):
    """export --to tracemalloc, loaded by the interpreter's Snapshot.load,
    gives exactly trmtop top's rows, unfiltered and filtered."""
    r = workload_run(python, "app", spawn, tmp_path_factory)
    out = str(tmp_path / "export.pickle")
    res = run_trmtop("export", r.trm, "--to", "tracemalloc", "-o", out)
    assert res.rc == 0, res
    for name, (opts, filters) in sorted(FILTER_CASES.items()):
        queries = QUERIES if name in ("none", "exclude-recent") else (("lineno", False), ("traceback", False))
        want = compare_top(python, r.trm, out, opts, filters, "export (%s)" % name, queries)
        assert want["traceback_limit"] == FRAMES
        if name == "exclude-domain-0":
            assert want["results"][0]["rows"] == []
        elif name != "exclude-recent":
            assert want["results"][0]["rows"], name  # the case filters something in
    # trmtop reads its own export back as the same snapshot
    for key, cum in QUERIES:
        assert_same_rows(top_rows(out, key, cum)[0], top_rows(r.trm, key, cum)[0],
                         "top of the export vs top of the .trm, %s%s" % (key, " cumulative" if cum else ""))
    # a filtered export holds the filtered traces only
    res = run_trmtop("export", r.trm, "--to", "tracemalloc", "-o", out, *exclude_opts())
    assert res.rc == 0, res
    want = tm_stats(python, out, QUERIES)
    for (key, cum), w in zip(QUERIES, want["results"]):
        assert_same_rows(top_rows(r.trm, key, cum, exclude_opts())[0], w["rows"],
                         "filtered export, %s%s" % (key, " cumulative" if cum else ""))


def test_import(python, spawn, tmp_path_factory, tmp_path):
    """import of the target's own Snapshot.dump: trmtop top of the .trm
    equals the interpreter's statistics of the dump, and so does top of
    the dump itself."""
    r = workload_run(python, "app", spawn, tmp_path_factory)
    trm = str(tmp_path / "imported.trm")
    res = run_trmtop("import", r.dump, "-o", trm)
    assert res.rc == 0, res
    for name in ("none", "exclude-recent", "include-line", "exclude-all-frames"):
        opts, filters = FILTER_CASES[name]
        compare_top(python, trm, r.dump, opts, filters, "import (%s)" % name)
    compare_top(python, r.dump, r.dump, [], [], "top of the dump itself")


# ---------------------------------------------------------------------------
# Metadata: the .trm header (docs/FORMATS.md, "The .trm format")




def _zz(v):
    return (v >> 1) ^ -(v & 1)


def read_trm_meta(path):
    with open(path, "rb") as f:
        buf = f.read()
    assert buf[:8] == b"TRMSNAP\0", buf[:16]
    version, flags = struct.unpack_from("<II", buf, 8)
    pos = 16
    vals = []
    for _ in range(8):
        v, pos = leb128_decode(buf, pos)
        vals.append(v)
    strs = []
    for _ in range(3):
        n, pos = leb128_decode(buf, pos)
        strs.append(buf[pos:pos + n].decode())
        pos += n
    assert buf[-4:] == b"TEND"
    keys = ("pid", "py_hexversion", "traceback_limit", "time_ns", "traced_current", "traced_peak",
            "rss", "tracemalloc_memory")
    meta = dict(zip(keys, vals))
    meta["pid"] = _zz(meta["pid"])
    meta["time_ns"] = _zz(meta["time_ns"])
    meta.update(zip(("executable", "python_version", "host"), strs))
    meta["version"], meta["flags"] = version, flags
    return meta


def test_metadata(python, spawn, tmp_path_factory):
    r = workload_run(python, "app", spawn, tmp_path_factory)
    m = read_trm_meta(r.trm)
    assert m["version"] == 1, m
    assert m["pid"] == r.pid, m
    v = python.version
    assert m["py_hexversion"] >> 8 == (v[0] << 16) | (v[1] << 8) | v[2], (hex(m["py_hexversion"]), v)
    assert m["python_version"] == python.version_str, m
    assert m["traceback_limit"] == FRAMES, m
    assert r.t0 <= m["time_ns"] <= r.t1, (r.t0, m["time_ns"], r.t1)
    assert os.path.realpath(m["executable"]) == python.executable, m
    assert m["host"] == socket.gethostname(), m
    # traced memory as the target saw it (the dump and our commands since
    # then moved it a little); peak >= current; RSS and tracemalloc's own
    # memory are there.
    assert 0 < m["traced_current"] <= m["traced_peak"], m
    assert abs(m["traced_current"] - r.truth["current"]) <= 0.05 * r.truth["current"], (m, r.truth)
    assert m["rss"] > m["traced_current"], m
    assert m["tracemalloc_memory"] > 0, m
    # snapshot's summary line says the same (no other command shows the
    # metadata)
    n = tm_stats(python, r.dump, ())["ntraces"]
    line = r.summary.strip()
    assert re.match(r"^%s: \d+ traces, [\d.]+ (?:B|[KMG]iB) traced, traceback limit %d \(pid %d, Python %s\)$" % (
        re.escape(r.trm), FRAMES, r.pid, re.escape(python.version_str)), line), line
    assert abs(int(line.split(": ", 1)[1].split()[0]) - n) <= 0.05 * n, (line, n)


# ---------------------------------------------------------------------------
# Tracing state around a snapshot


def test_tracing_left_as_found(python, spawn, tmp_path):
    """Tracing off: a snapshot turns it on for its duration and off again;
    with --keep-tracing it stays on with --frames; the application's own
    tracing and limit are never touched."""
    t = spawn(python, "leaker")
    assert t.truth()["tracing"] is False
    snapshot(t.pid, str(tmp_path / "a.trm"), "--duration", "0", "--frames", "3")
    truth = t.truth()
    assert truth["tracing"] is False, "tracing left on after a plain snapshot: %r" % truth
    assert read_trm_meta(str(tmp_path / "a.trm"))["traceback_limit"] == 3

    t.ok("leak 5")  # untraced
    snapshot(t.pid, str(tmp_path / "b.trm"), "--duration", "0", "--frames", "6", "--keep-tracing")
    truth = t.truth()
    assert truth["tracing"] is True and truth["limit"] == 6, truth
    t.check_healthy()
    assert t.exit() == EXIT_CODE

    t = spawn(python, "workload", args=["app"])
    snapshot(t.pid, str(tmp_path / "c.trm"), "--frames", "9")
    truth = t.truth()
    assert truth["tracing"] is True and truth["limit"] == FRAMES, truth
    assert read_trm_meta(str(tmp_path / "c.trm"))["traceback_limit"] == FRAMES
    t.check_healthy()
    assert t.exit() == EXIT_CODE
