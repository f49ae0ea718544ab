"""Sampled snapshots end to end: `trmtop snapshot --sample` of a target
whose heavy lines are known, against the target's own tracemalloc (its
ground truth: tests/targets/sampled_lines.py), in every interpreter.

* the estimates of each heavy line (bytes and blocks in use) are within
  25% of tracemalloc's exact figures (64 KiB sampling, tens of MB a line:
  hundreds of samples each; the seed is fixed for a replay);
* reports say so: the header line, the estimate mark (UTF-8 or ASCII by
  the locale), JSON's "sampled"; export carries it, refuses tracemalloc's
  format;
* --what alloc: a churning line has allocated more than it holds (about
  its known total), a line that never frees as much as it holds;
* diff of two sampled snapshots ranks a leaking line first; a sampled and
  an exact snapshot are not compared; --what alloc of an exact one is a
  usage error; a sampled file made malformed is refused in one line;
* stop says the sampler is off.
"""
import json
import os
import struct
import zlib

import pytest

from conftest import EXIT_CODE, marked_line, stats, wait_until

TOL = 0.25
SAMPLE = 64 << 10
HEAVY = ("KEEP-A", "KEEP-B", "BIG", "CHURN")
NEVER_FREED = ("KEEP-A", "KEEP-B", "BIG")
UTF8 = {"LC_ALL": "C.UTF-8"}
ASCII = {"LC_ALL": "C", "LANG": "C"}


def by_line(report):
    """{lineno: row} of the rows of sampled_lines.py in a JSON report."""
    rows = report.get("stats", report.get("diffs"))
    out = {}
    for r in rows:
        f = r["frames"][-1] if r["frames"] else None
        if f and f["filename"].endswith("sampled_lines.py"):
            out[f["lineno"]] = r
    return out


def near(got, want, what):
    assert want > 0, what
    assert abs(got - want) <= TOL * want, "%s: estimate %d, exact %d (%.0f%%)" % (
        what, got, want, 100.0 * (got - want) / want)


def one_line_error(res, rc, *words):
    assert res.rc == rc, res
    lines = [l for l in res.err.splitlines() if l.strip()]
    assert len(lines) >= 1 and lines[0].startswith("trmtop: "), res
    assert not any(l.startswith("trmtop: ") for l in lines[1:]), res
    for w in words:
        assert w in lines[0], (w, res)


@pytest.fixture
def target(python, spawn, monkeypatch):
    monkeypatch.setenv("TRMTOP_SAMPLE_SEED", "20260512")
    return spawn(python, "sampled_lines")


def test_sampled_snapshot(target, trmtop, tmp_path):
    t = target
    res = trmtop("start", "--pid", t.pid, "--sample=64KiB")
    assert res.rc == 0 and "sampled every 64.0 KiB" in res.out, res
    t.ok("run", timeout=120)
    truth = json.loads(t.cmd("lines"))
    a = str(tmp_path / "a.trm")
    # the sampler runs: its estimates at once
    res = trmtop("snapshot", "--pid", t.pid, "--sample", "-o", a)
    assert res.rc == 0 and "sampled every 64.0 KiB" in res.out, res

    res = trmtop("top", a, "--format", "json", "--limit", "0")
    assert res.rc == 0, res
    top = res.json()
    assert top["sampled"] == {"size": SAMPLE, "what": "inuse"}, top["sampled"]
    rows = by_line(top)
    for m in HEAVY:
        w = truth[m]
        r = rows.get(w["line"])
        assert r, "%s (line %d) not in the report" % (m, w["line"])
        near(r["size"], w["size"], m + " bytes in use")
        near(r["count"], w["count"], m + " blocks in use")
    ranked = [r["frames"][-1]["lineno"] for r in top["stats"][:2]]
    assert ranked == [truth["KEEP-A"]["line"], truth["BIG"]["line"]], ranked

    # allocated since sampling started
    res = trmtop("top", a, "--format", "json", "--limit", "0", "--what", "alloc")
    assert res.rc == 0, res
    alloc = res.json()
    assert alloc["sampled"] == {"size": SAMPLE, "what": "alloc"}
    arows = by_line(alloc)
    for m in NEVER_FREED:
        line = truth[m]["line"]
        assert (arows[line]["size"], arows[line]["count"]) == \
            (rows[line]["size"], rows[line]["count"]), m
    churn = truth["CHURN"]["line"]
    assert arows[churn]["size"] > rows[churn]["size"], (arows[churn], rows[churn])
    near(arows[churn]["size"], 6 * truth["CHURN"]["size"], "CHURN bytes allocated")
    assert alloc["total_size"] >= top["total_size"]

    # text: the header and the estimate mark, as the locale allows
    res = trmtop("top", a, env=UTF8)
    assert res.rc == 0, res
    first = res.out.splitlines()[0]
    assert first == ("Sampled every 64.0 KiB: sizes and counts are estimates "
                     "of the memory in use"), res.out
    assert "size=\u2248" in res.out and "count=\u2248" in res.out, res.out
    assert "Total: size=\u2248" in res.out, res.out
    res = trmtop("top", a, "--what", "alloc", env=ASCII)
    assert res.rc == 0, res
    assert res.out.splitlines()[0].endswith("allocated since sampling started")
    assert "size=~" in res.out and "\u2248" not in res.out, res.out
    res = trmtop("traceback", a, "--rank", "1", env=UTF8)
    assert res.rc == 0 and res.out.startswith("Sampled every 64.0 KiB"), res
    assert " memory blocks: \u2248" in res.out, res.out

    # export: JSON and collapsed carry the estimates; tracemalloc's refuses
    res = trmtop("export", a, "--to", "json")
    assert res.rc == 0, res
    ex = res.json()
    assert ex["sampled"]["size"] == SAMPLE and ex["total_size"] == top["total_size"]
    res = trmtop("export", a, "--to", "collapsed")
    assert res.rc == 0, res
    assert sum(int(l.rsplit(" ", 1)[1]) for l in res.out.splitlines()) == top["total_size"]
    res = trmtop("export", a, "--to", "tracemalloc", "-o", str(tmp_path / "x.pickle"))
    one_line_error(res, 2, "sampled", "tracemalloc")
    assert not os.path.exists(str(tmp_path / "x.pickle"))

    # a leak, then diff: the leaking line first
    t.ok("leak 32", timeout=120)
    truth2 = json.loads(t.cmd("lines"))
    b = str(tmp_path / "b.trm")
    res = trmtop("snapshot", "--pid", t.pid, "--sample", "-o", b)
    assert res.rc == 0, res
    res = trmtop("diff", a, b, "--format", "json")
    assert res.rc == 0, res
    d = res.json()
    assert d["sampled"] == {"size": SAMPLE, "what": "inuse"}
    first = d["diffs"][0]
    assert first["frames"][-1]["lineno"] == truth2["LEAK"]["line"], d["diffs"][:3]
    near(first["size_diff"], truth2["LEAK"]["size"], "LEAK growth")
    res = trmtop("diff", a, b, env=UTF8)
    assert res.rc == 0 and res.out.startswith("Sampled every 64.0 KiB"), res
    assert "(\u2248+" in res.out, res.out

    # an exact snapshot (the application's tracemalloc) does not compare
    c = str(tmp_path / "c.trm")
    res = trmtop("snapshot", "--pid", t.pid, "-o", c)
    assert res.rc == 0 and "sampled every" not in res.out, res
    res = trmtop("diff", a, c)
    one_line_error(res, 2, "sampled every 64.0 KiB", "exact", "do not compare")
    res = trmtop("top", c, "--what", "alloc")
    one_line_error(res, 1, "--what alloc", "sampled")

    # stop: the sampler off, the application's tracing left on
    res = trmtop("stop", "--pid", t.pid)
    assert res.rc == 0, res
    assert res.out.strip() == ("pid %d: sampling off; tracing was started by "
                               "the application: left on" % t.pid), res
    assert "sample_size" not in stats(t.pid)


def test_malformed_sampled_file(target, trmtop, tmp_path):
    t = target
    a = str(tmp_path / "a.trm")
    res = trmtop("snapshot", "--pid", t.pid, "--sample=64KiB", "--duration", "0",
                 "-o", a)
    assert res.rc == 0, res
    with open(a, "rb") as f:
        data = f.read()
    assert data[:8] == b"TRMSNAP\0" and struct.unpack_from("<II", data, 8) == (2, 2)
    # version 1 says nothing of samples: refused, with the CRC made right
    bad = bytearray(data)
    struct.pack_into("<I", bad, 8, 1)
    struct.pack_into("<I", bad, len(bad) - 8, zlib.crc32(bytes(bad[:-8])))
    p = str(tmp_path / "v1.trm")
    with open(p, "wb") as f:
        f.write(bad)
    one_line_error(trmtop("top", p), 4, "unknown flags 0x2")
    # truncated in its estimates
    p = str(tmp_path / "cut.trm")
    with open(p, "wb") as f:
        f.write(data[:len(data) - 12])
    one_line_error(trmtop("top", p), 4, "cut.trm")
    res = trmtop("top", a)
    assert res.rc == 0, res


def test_live_refreshes_equal_snapshot(target, trmtop, tmp_path):
    """The live view's sampled refreshes (after the first, table replies
    of only the changed rows, wire minor 3) add up to what a full
    `snapshot --sample` says: the target stops allocating, the view
    refreshes three times, then a snapshot; the heavy lines have the same
    estimates in both (nothing changed in between)."""
    t = target
    res = trmtop("start", "--pid", t.pid, "--sample=64KiB")
    assert res.rc == 0, res
    t.ok("run", timeout=120)
    truth = json.loads(t.cmd("lines"))
    res = trmtop("--pid", t.pid, "--batch", "--sample", "--format", "json",
                 "--iterations", "3", "--interval", "200ms")
    assert res.rc == 0, res
    refreshes = [json.loads(l) for l in res.out.splitlines() if l.strip()]
    assert len(refreshes) == 3, res.out
    a = str(tmp_path / "a.trm")
    res = trmtop("snapshot", "--pid", t.pid, "--sample", "-o", a)
    assert res.rc == 0, res
    res = trmtop("top", a, "--format", "json", "--limit", "0")
    assert res.rc == 0, res
    rows = by_line(res.json())
    for o in refreshes:
        assert o["sampled"] == {"size": SAMPLE}, o["sampled"]
        live = {r["lineno"]: r for r in o["rows"]
                if r["filename"].endswith("sampled_lines.py")}
        for m in HEAVY:
            line = truth[m]["line"]
            assert line in live and line in rows, (m, sorted(live), sorted(rows))
            assert (live[line]["size"], live[line]["count"]) == \
                (rows[line]["size"], rows[line]["count"]), \
                (m, o["refresh"], live[line], rows[line])
    res = trmtop("stop", "--pid", t.pid)
    assert res.rc == 0, res


def test_leak_in_a_large_heap(python_faults, spawn, trmtop, tmp_path):
    """Issue 12's leak test for diff: at the default size (512 KiB), a
    worker builds a 200 MiB heap under the sampler, then serves requests
    that churn short-lived objects and leak 4 KiB each, 1 MiB per
    simulated minute (a minute lasting 500 ms: an accelerated run).  Two
    sampled snapshots 20 simulated minutes apart: diff ranks the leaking
    line first, its growth about the 20 MiB leaked (the estimate of some
    40 samples: within 60%, 3.8 standard deviations); the heap's lines are
    in the snapshots (top)."""
    t = spawn(python_faults, "prod_leak")
    leak = marked_line(t.script, "LEAK-LINE")
    heap = {marked_line(t.script, m) for m in ("HEAP-BYTES", "HEAP-STR", "HEAP-DICT")}
    res = trmtop("start", "--pid", t.pid, "--sample")
    assert res.rc == 0 and "sampled every 512 KiB" in res.out, res
    t.ok("heap 200", timeout=120)
    t.ok("serve 500")
    a, b = str(tmp_path / "a.trm"), str(tmp_path / "b.trm")
    res = trmtop("snapshot", "--pid", t.pid, "-o", a)
    assert res.rc == 0, res
    leaked0 = int(t.cmd("leaked"))
    wait_until(lambda: int(t.cmd("leaked")) >= leaked0 + (20 << 20), 120,
               "20 MiB more leaked")
    res = trmtop("snapshot", "--pid", t.pid, "-o", b)
    assert res.rc == 0, res
    leaked = int(t.cmd("leaked")) - leaked0
    t.ok("serve 0")
    top = json.loads(trmtop("top", b, "--format", "json", "--limit", "10").out)
    lines = {r["frames"][-1]["lineno"] for r in top["stats"]
             if r["frames"] and r["frames"][-1]["filename"] == t.script}
    assert heap <= lines, top["stats"]
    assert sum(r["size"] for r in top["stats"]
               if r["frames"] and r["frames"][-1]["lineno"] in heap) > 150 << 20, top["stats"]
    d = json.loads(trmtop("diff", a, b, "--format", "json").out)
    first = d["diffs"][0]
    assert (first["frames"][-1]["filename"], first["frames"][-1]["lineno"]) == (t.script, leak), \
        d["diffs"][:3]
    assert abs(first["size_diff"] - leaked) <= 0.6 * leaked, (first, leaked)
    assert trmtop("stop", "--pid", t.pid).rc == 0
    assert t.exit() == EXIT_CODE
