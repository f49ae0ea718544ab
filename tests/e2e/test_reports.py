"""The offline reports: diff of a leaking target (and --fail-above as a CI
gate), traceback, and what every reader does with a bad input file.

The leaker target (tests/targets/leaker.py) leaks LEAK_SIZE-byte bytearrays
from one line on command and reports its own tracemalloc statistic of that
line (`linestat`), which is the exact growth a diff must show.
"""

import json
import os
import pickle
import re
import struct
import subprocess
import zlib

import pytest

from conftest import EXIT_CODE, REPO, TARGETS, run_trmtop
from test_snapshot import (MARKS, QUERIES, WORKLOAD, assert_same_rows, snapshot, top_rows,
                           workload_run)

LEAKER = os.path.join(TARGETS, "leaker.py")
LEAK_SIZE = 10 * 1024  # tests/targets/leaker.py LEAK_SIZE
FIXTURES = os.path.join(REPO, "tests", "fixtures", "tracemalloc")


def _leak_line():
    with open(LEAKER) as f:
        lines = [no for no, text in enumerate(f, 1) if text.rstrip().endswith("   # LEAK-LINE")]
    assert len(lines) == 1, lines
    return lines[0]


LEAK_LINE = _leak_line()
LEAK_LOC = "%s:%d" % (LEAKER, LEAK_LINE)

# ---------------------------------------------------------------------------
# A leaking target, snapshotted twice (once per interpreter)

_leaks = {}


class LeakRun(object):
    pass


def leak_run(python, spawn, tmp_path_factory):
    if python.id in _leaks:
        if _leaks[python.id] is None:
            pytest.skip("the leaker run of %s failed in an earlier test" % python.id)
        return _leaks[python.id]
    _leaks[python.id] = None
    d = str(tmp_path_factory.mktemp("leaker-%s" % python.id))
    r = LeakRun()
    t = spawn(python, "leaker")
    # trmtop turns tracing on (1 frame) and leaves it on
    snapshot(t.pid, os.path.join(d, "start.trm"), "--duration", "0", "--keep-tracing")
    t.ok("leak 10")
    r.a, r.b = os.path.join(d, "a.trm"), os.path.join(d, "b.trm")
    r.stat_a = json.loads(t.cmd("linestat"))
    snapshot(t.pid, r.a, "--keep-tracing")
    # The attach allocates nothing at the leaking line.
    assert json.loads(t.cmd("linestat")) == r.stat_a
    t.ok("leak 40")
    r.stat_b = json.loads(t.cmd("linestat"))
    snapshot(t.pid, r.b, "--keep-tracing")
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    r.growth = r.stat_b["size"] - r.stat_a["size"]
    r.count_growth = r.stat_b["count"] - r.stat_a["count"]
    # 40 bytearrays: object and buffer each, plus the list's own growth
    assert r.growth >= 40 * LEAK_SIZE and r.count_growth >= 80, (r.stat_a, r.stat_b)
    assert r.growth <= 40 * (LEAK_SIZE + 256) + 4096, (r.stat_a, r.stat_b)
    _leaks[python.id] = r
    return r


def diff(*args):
    return run_trmtop("diff", *args)


def test_diff_names_the_leak(python, spawn, tmp_path_factory):
    r = leak_run(python, spawn, tmp_path_factory)
    res = diff(r.a, r.b, "--format", "json", "--limit", "0")
    assert res.rc == 0, res
    j = res.json()
    assert j["key"] == "lineno" and j["cumulative"] is False
    first = j["diffs"][0]
    assert [(f["filename"], f["lineno"]) for f in first["frames"]] == [(LEAKER, LEAK_LINE)], res
    assert first["rank"] == 1
    assert first["size_diff"] == r.growth, (first, r.stat_a, r.stat_b)
    assert first["count_diff"] == r.count_growth, (first, r.stat_a, r.stat_b)
    assert first["size"] == r.stat_b["size"] and first["count"] == r.stat_b["count"], (first, r.stat_b)
    # compare_to's order: |size_diff|, then ...; the rest is small noise
    assert all(abs(d["size_diff"]) < r.growth for d in j["diffs"][1:]), j["diffs"][1:4]
    assert j["total_size_diff"] == sum(d["size_diff"] for d in j["diffs"]), j["total_size_diff"]
    # the new snapshot's own statistics agree
    rows, _ = top_rows(r.b, "lineno", False)
    assert [r.stat_b["size"], r.stat_b["count"], [[LEAKER, LEAK_LINE]]] in rows

    # text: the first row is the leaking line, with its source
    res = diff(r.a, r.b)
    assert res.rc == 0, res
    first = [l for l in res.out.splitlines() if l.startswith("#1:")]
    assert first and first[0].startswith("#1: %s:" % LEAK_LOC), res
    assert "LEAKED.append(bytearray(LEAK_SIZE))" in res.out, res

    # the other way round: the same line first, shrinking by as much
    res = diff(r.b, r.a, "--format", "json")
    assert res.rc == 0, res
    first = res.json()["diffs"][0]
    assert [(f["filename"], f["lineno"]) for f in first["frames"]] == [(LEAKER, LEAK_LINE)], res
    assert first["size_diff"] == -r.growth and first["count_diff"] == -r.count_growth, first

    # by file: leaker.py grows by at least as much
    res = diff(r.a, r.b, "--format", "json", "--group-by", "filename")
    assert res.rc == 0, res
    first = res.json()["diffs"][0]
    assert [(f["filename"], f["lineno"]) for f in first["frames"]] == [(LEAKER, 0)], res
    assert first["size_diff"] >= r.growth, first


COMPARE_HELPER = r"""
import json, sys, tracemalloc
old, new = (tracemalloc.Snapshot.load(p) for p in sys.argv[1:3])
out = []
for key, cum in json.loads(sys.argv[3]):
    out.append([[d.size, d.size_diff, d.count, d.count_diff,
                 [[f.filename, f.lineno] for f in d.traceback]]
                for d in new.compare_to(old, key, cum)])
sys.stdout.write(json.dumps(out))
"""


def test_diff_exact(python, spawn, tmp_path_factory, tmp_path):
    """diff == the interpreter's own Snapshot.compare_to (of trmtop's
    exports of both snapshots), every key: same rows, same order."""
    r = leak_run(python, spawn, tmp_path_factory)
    dumps = []
    for name in ("a", "b"):
        out = str(tmp_path / (name + ".pickle"))
        res = run_trmtop("export", getattr(r, name), "--to", "tracemalloc", "-o", out)
        assert res.rc == 0, res
        dumps.append(out)
    res = subprocess.run([python.path, "-E", "-c", COMPARE_HELPER] + dumps + [json.dumps(QUERIES)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=120)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    for (key, cum), want in zip(QUERIES, json.loads(res.stdout.decode())):
        args = ["--group-by", key] + (["--cumulative"] if cum else [])
        res = diff(r.a, r.b, "--format", "json", "--limit", "0", *args)
        assert res.rc == 0, res
        j = res.json()
        got = [[d["size"], d["size_diff"], d["count"], d["count_diff"],
                [[f["filename"], f["lineno"]] for f in d["frames"]]] for d in j["diffs"]]
        label = "diff vs compare_to, %s%s" % (key, " cumulative" if cum else "")
        assert_same_rows([[g[0], g[1], g[4], g[2], g[3]] for g in got],
                         [[w[0], w[1], w[4], w[2], w[3]] for w in want], label)
        if (key, cum) == QUERIES[0]:
            total = sum(w[1] for w in want)
        # the growth of the traces, whatever the grouping
        assert j["total_size_diff"] == total, (label, j["total_size_diff"], total)


def test_fail_above(python, spawn, tmp_path_factory):
    r = leak_run(python, spawn, tmp_path_factory)
    res = diff(r.a, r.b, "--format", "json", "--limit", "0")
    assert res.rc == 0, res
    total = res.json()["total_size_diff"]
    assert total >= r.growth - 4096, (total, r.growth)

    def gate(opt, size, rc):
        res = diff(r.a, r.b, opt, str(size))
        assert res.rc == rc, res
        assert res.out.startswith("Top "), res  # the report is printed either way
        if rc == 3:
            assert res.err.startswith("trmtop: "), res
            assert LEAK_LOC in res.err, "the leaking line is not named: %r" % res
            assert "Traceback" not in res.err, res
        else:
            assert res.err == "", res

    gate("--fail-above", total - 1, 3)
    gate("--fail-above", total, 0)
    gate("--fail-above", "1KiB", 3)
    gate("--fail-above", "1GiB", 0)
    gate("--fail-above-line", r.growth - 1, 3)
    gate("--fail-above-line", r.growth, 0)
    gate("--fail-above-line", "10KiB", 3)
    # both: either exceeded is enough
    res = diff(r.a, r.b, "--fail-above", "1GiB", "--fail-above-line", r.growth - 1)
    assert res.rc == 3, res
    res = diff(r.a, r.b, "--fail-above", total, "--fail-above-line", r.growth)
    assert res.rc == 0, res
    # no growth at all: a snapshot against itself
    res = diff(r.b, r.b, "--fail-above", "0", "--fail-above-line", "0", "--format", "json")
    assert res.rc == 0, res
    assert res.json()["total_size_diff"] == 0


# ---------------------------------------------------------------------------
# traceback


_BLOCKS = re.compile(r"^(\d+) memory blocks?: ")
_FILE = re.compile(r'^  File "(.*)", line (\d+)$')


def parse_traceback(text):
    """(count, [[filename, lineno], ...]) of `trmtop traceback` text."""
    lines = text.splitlines()
    m = _BLOCKS.match(lines[0])
    assert m, text
    frames = [[m.group(1), int(m.group(2))] for m in map(_FILE.match, lines) if m]
    return int(m.group(1)), frames


def test_traceback_one_frame(python, spawn, tmp_path_factory):
    r = leak_run(python, spawn, tmp_path_factory)
    res = run_trmtop("traceback", r.a)
    assert res.rc == 0, res
    count, frames = parse_traceback(res.out)
    assert (count, frames) == (r.stat_a["count"], [[LEAKER, LEAK_LINE]]), res
    assert "note:" in res.out + res.err and "--frames" in res.out + res.err, res


def test_traceback_rank_location(python, spawn, tmp_path_factory):
    r = workload_run(python, "app", spawn, tmp_path_factory)
    rows, _ = top_rows(r.trm, "traceback", False)
    for rank in range(1, 13):
        res = run_trmtop("traceback", r.trm, "--rank", rank)
        assert res.rc == 0, res
        assert parse_traceback(res.out) == (rows[rank - 1][1], rows[rank - 1][2]), (rank, res)
        assert "note:" not in res.out + res.err, res  # 4 frames
    res = run_trmtop("traceback", r.trm)
    assert res.rc == 0 and parse_traceback(res.out) == (rows[0][1], rows[0][2]), res
    for name in ("RECURSE-LEAF", "LEAF-BYTES", "TIE-A", "MANY-STR"):
        loc = [WORKLOAD, MARKS[name]]
        want = [row for row in rows if row[2][-1] == loc][0]  # the largest ending there
        for spelling in ("%s:%d" % tuple(loc), "workload.py:%d" % loc[1]):
            res = run_trmtop("traceback", r.trm, "--location", spelling)
            assert res.rc == 0, res
            assert parse_traceback(res.out) == (want[1], want[2]), (name, res)
    # nothing there / past the end: an error line, no traceback
    for args in (["--location", "%s:%d" % (WORKLOAD, MARKS["TIE-A"] + 1000)], ["--rank", len(rows) + 1]):
        res = run_trmtop("traceback", r.trm, *args)
        assert res.rc not in (0, 3, 4) and res.rc > 0, res
        assert res.out == "" and re.match(r"^trmtop: .+", res.err) and len(res.err.splitlines()) == 1, res


def test_traceback_json(good_trm):
    """--format json prints one JSON document (as top does): the chosen
    traceback's row, the same as top's row of that rank."""
    rows, _ = top_rows(good_trm, "traceback", False)
    assert len(rows) >= 2
    for rank in (1, 2):
        res = run_trmtop("traceback", good_trm, "--rank", rank, "--format", "json")
        assert res.rc == 0, res
        j = res.json()
        got = [[s["size"], s["count"], [[f["filename"], f["lineno"]] for f in s["frames"]]]
               for s in j["stats"]]
        assert got == [rows[rank - 1]], res


def test_traceback_key_not_cumulative(good_trm):
    """tracemalloc refuses cumulative traceback statistics; so does trmtop."""
    for cmd in (["top", good_trm], ["diff", good_trm, good_trm]):
        res = run_trmtop(*(cmd + ["--group-by", "traceback", "--cumulative"]))
        assert res.rc == 1 and res.out == "", res


# ---------------------------------------------------------------------------
# Bad input files: exit 4, one `trmtop: FILE: ...` line, nothing else.


def check_bad(path, *cmd):
    """cmd with path at the place of None (default: top PATH)."""
    argv = [a if a is not None else path for a in (cmd or ("top", None))]
    res = run_trmtop(*argv)
    assert res.rc == 4, res
    assert res.out == "", res
    lines = res.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("trmtop: %s: " % path), res
    return lines[0]


@pytest.fixture(scope="module")
def good_trm(tmp_path_factory):
    """A small .trm: the 3.12 tracemalloc fixture, imported."""
    d = tmp_path_factory.mktemp("bad-inputs")
    path = str(d / "good.trm")
    res = run_trmtop("import", os.path.join(FIXTURES, "3.12.pickle"), "-o", path)
    assert res.rc == 0, res
    return path


def _with_crc(b):
    b = bytearray(b)
    b[-8:-4] = struct.pack("<I", zlib.crc32(bytes(b[:-8])))
    return bytes(b)


def test_bad_trm(trmtop_bin, good_trm, tmp_path):
    with open(good_trm, "rb") as f:
        src = f.read()
    n = len(src)
    assert src[:8] == b"TRMSNAP\0" and src[-4:] == b"TEND"
    assert run_trmtop("top", good_trm).rc == 0
    p = str(tmp_path / "bad.trm")

    def write(data):
        with open(p, "wb") as f:
            f.write(data)
        return p

    # truncated anywhere
    for off in range(n):
        line = check_bad(write(src[:off]))
        assert "truncated" in line or "bad magic" in line, line
    # truncated, through every reader
    write(src[:n // 2])
    check_bad(p, "diff", good_trm, None)
    check_bad(p, "diff", None, good_trm)
    check_bad(p, "traceback", None)
    check_bad(p, "export", None, "--to", "json")
    check_bad(p, "export", None, "--to", "tracemalloc", "-o", str(tmp_path / "x.pickle"))
    check_bad(p, "import", None, "-o", str(tmp_path / "x.trm"))
    assert not os.path.exists(str(tmp_path / "x.pickle")) and not os.path.exists(str(tmp_path / "x.trm"))
    # any byte corrupted
    for off in range(n):
        b = bytearray(src)
        b[off] ^= 0x5A
        check_bad(write(bytes(b)))
    # trailing data
    check_bad(write(src + b"\0"))
    # random bytes, and random bytes after a good magic
    rnd = bytes((i * 2654435761 >> 7) & 0xFF for i in range(4096))
    assert "magic" in check_bad(write(rnd))
    check_bad(write(src[:16] + rnd))
    # a newer version, even with a good checksum; unknown flags
    for version in (3, 0x100, 0xFFFFFFFF):   # 2 is a sampled file's
        b = bytearray(src)
        b[8:12] = struct.pack("<I", version)
        for data in (bytes(b), _with_crc(b)):
            line = check_bad(write(data))
            assert "version" in line and "newer" in line, line
    b = bytearray(src)
    b[12] |= 0x80
    assert "flag" in check_bad(write(_with_crc(b)))
    # empty, a directory, a missing file
    check_bad(write(b""))
    check_bad(str(tmp_path))
    check_bad(str(tmp_path / "nonexistent.trm"))
    check_bad(str(tmp_path / "nonexistent.trm"), "diff", None, good_trm)


def test_bad_tracemalloc_dump(trmtop_bin, tmp_path):
    """A truncated or damaged Snapshot.dump, through import and top."""
    with open(os.path.join(FIXTURES, "3.12.pickle"), "rb") as f:
        src = f.read()
    p = str(tmp_path / "bad.pickle")
    out = str(tmp_path / "out.trm")
    for off in list(range(0, len(src), 7)) + [len(src) - 1]:
        with open(p, "wb") as f:
            f.write(src[:off])
        check_bad(p, "import", None, "-o", out)
        check_bad(p)
        assert not os.path.exists(out)
    # a pickle of something else
    with open(p, "wb") as f:
        pickle.dump({"traces": [1, 2, 3]}, f, 4)
    check_bad(p, "import", None, "-o", out)
