"""Two sessions to two targets at once, in one process (session.h).

tests/unit/session/session_pair.c opens a session to each of two workload
targets (tests/targets/workload.py) and drives both with one poll loop,
stepping each without blocking: STATS on both, optionally START on both,
then a snapshot from both, interleaved.  Each snapshot must then equal its
target's own tracemalloc.take_snapshot() exactly, as `trmtop snapshot`'s
does in test_snapshot.py (same exclusions: the attach's and the dump's
own traces).

The helper is found next to the trmtop under test
(<build>/tests/unit/session/session_pair), or at $TRMTOP_SESSION_PAIR.
"""

import os
import re
import subprocess
import json

import pytest

from conftest import EXIT_CODE, TRMTOP_TIMEOUT, trmtop_path
from test_snapshot import FRAMES, compare_top, exclude_filters, exclude_opts, snapshot


def pair_path():
    env = os.environ.get("TRMTOP_SESSION_PAIR")
    if env:
        return env
    build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(trmtop_path()))))
    return os.path.join(build, "tests", "unit", "session", "session_pair")


def run_pair(targets, outs, *opts):
    path = pair_path()
    if not os.access(path, os.X_OK):
        pytest.fail("session_pair helper %s not found (build it, or set TRMTOP_SESSION_PAIR)" % path)
    argv = [path] + [str(o) for o in opts]
    for t, out in zip(targets, outs):
        argv += [str(t.pid), out]
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=TRMTOP_TIMEOUT)
    err = res.stderr.decode(errors="replace")
    assert res.returncode == 0, "session_pair failed (rc %d): %s" % (res.returncode, err)
    assert err == "", err
    j = json.loads(res.stdout.decode())
    assert [s["pid"] for s in j["sessions"]] == [t.pid for t in targets], j
    return j


def warm(t, d, name):
    """As test_snapshot's workload_run: a first attach (the agent's import
    leaves cyclic garbage on 3.8-3.10), a collection, and once through the
    whole `dump` path."""
    snapshot(t.pid, os.path.join(d, name + "-first.trm"))
    assert re.match(r"^\d+$", t.cmd("collect"))
    t.ok("dump %s" % os.path.join(d, name + "-warm.pickle"))


def compare_both(python, targets, d, outs, what):
    for i, (t, out) in enumerate(zip(targets, outs)):
        dump = os.path.join(d, "truth%d.pickle" % i)
        t.ok("dump %s" % dump)
        truth = t.truth()
        assert truth["tracing"] is True and truth["limit"] == FRAMES, truth
        want = compare_top(python, out, dump, exclude_opts(), exclude_filters(),
                           "%s, target %d: session snapshot vs in-process dump" % (what, i))
        assert want["traceback_limit"] == FRAMES


def check_interleaved(j):
    for s in j["sessions"]:
        assert s["ntraces"] > 0 and s["total"] > 0, j
        # one frame a step: HEAD, the chunks, END
        assert s["snapshot_steps"] >= 3, j
    assert j["interleaved"] is True, j


def finish(targets):
    for t in targets:
        t.check_healthy()
        assert t.exit() == EXIT_CODE
        assert t.stderr == b"", t.stderr


def test_two_sessions_app(python, spawn, tmp_path):
    """Tracing started by the applications: STATS finds it, the two
    snapshots, fetched at once, each equal their target's own."""
    d = str(tmp_path)
    targets = [spawn(python, "workload", args=["app"]) for _ in range(2)]
    for i, t in enumerate(targets):
        warm(t, d, "t%d" % i)
    outs = [os.path.join(d, "s%d.trm" % i) for i in range(2)]
    j = run_pair(targets, outs)
    for s in j["sessions"]:
        assert s["tracing"] == "application" and s["limit"] == FRAMES, j
        assert s["stats_steps"] >= 1, j
    check_interleaved(j)
    compare_both(python, targets, d, outs, "app")
    finish(targets)


def test_two_sessions_start(python_faults, spawn, tmp_path):
    """Tracing off: START (KEEP) on both at once turns it on in both; then
    the workloads run, and the two snapshots equal their targets' own."""
    python = python_faults
    d = str(tmp_path)
    targets = [spawn(python, "workload", args=["late"]) for _ in range(2)]
    for t in targets:
        assert t.truth()["tracing"] is False
    first = [os.path.join(d, "first%d.trm" % i) for i in range(2)]
    j = run_pair(targets, first, "--start", FRAMES)
    for s in j["sessions"]:
        assert s["tracing"] == "off" and s["started"] == "trmtop", j
        assert s["start_steps"] >= 1, j
    for t in targets:
        truth = t.truth()
        assert truth["tracing"] is True and truth["limit"] == FRAMES, truth
        t.ok("run")
        assert re.match(r"^\d+$", t.cmd("collect"))
        t.ok("dump %s" % os.path.join(d, "warm-%d.pickle" % t.pid))
    outs = [os.path.join(d, "s%d.trm" % i) for i in range(2)]
    j = run_pair(targets, outs)
    for s in j["sessions"]:
        assert s["tracing"] == "trmtop" and s["limit"] == FRAMES, j
    check_interleaved(j)
    compare_both(python, targets, d, outs, "late")
    finish(targets)
