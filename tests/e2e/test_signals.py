"""Signals: SIGINT, SIGTERM and SIGHUP cancel every wait of trmtop cleanly
(exit 128 + the signal, a message saying what was cancelled, the target
left as found: no thread stopped, tracing off again if this trmtop turned
it on), a second signal cuts the clean-up's waiting short, and SIGPIPE
never kills trmtop: a report into a pipe whose reader has gone ends
quietly, and an agent that goes away mid-request is an error (exit 2).

trmtop is known to be waiting by polling /proc (its syscall, the agent
thread's, the target's fds), never by sleeping."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import (agent_waits_for_gil, end_spin, spin_flag, sustained, wait_spinning, EXIT_CODE, PROC_TIMEOUT, Result, TRMTOP_TIMEOUT, _env,
                      assert_same_outcome, baseline, fd_links, run_trmtop,
                      stopped_or_traced, syscall_nr, tids, trmtop_path,
                      wait_until)
from test_faults import WAITING

SIGNALS = [pytest.param(signal.SIGINT, id="INT"), pytest.param(signal.SIGTERM, id="TERM"),
           pytest.param(signal.SIGHUP, id="HUP")]
# trmtop's clean-up waits 2 s at most for the agent; the rest is slack for
# a loaded machine.  Without the fix, trmtop waits for --attach-timeout
# (60 s) or the agent's answer (600 s).
CANCEL_BOUND = 20.0
def sig_name(sig):
    return signal.Signals(sig).name


class Trmtop(object):
    """trmtop running in the background."""

    def __init__(self, *args):
        self.argv = [trmtop_path()] + [str(a) for a in args]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=_env())
        self.samples = []

    @property
    def pid(self):
        return self.proc.pid

    def waiting(self):
        """trmtop is blocked in a wait (three samples in a row), or has
        ended (then the caller's assertion says how)."""
        if self.proc.poll() is not None:
            return True
        self.samples.append(syscall_nr(self.pid) in WAITING)
        return self.samples[-3:] == [True] * 3

    def finish(self, timeout=TRMTOP_TIMEOUT, what="trmtop to end"):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail("timed out after %.0fs waiting for %s: %r" % (
                timeout, what, Result(self.argv, None, out.decode(errors="replace"),
                                      err.decode(errors="replace"))))
        return Result(self.argv, self.proc.returncode, out.decode(errors="replace"),
                      err.decode(errors="replace"))

    def signal(self, sig):
        assert self.proc.poll() is None, "trmtop ended before the signal: %r" % self.finish()
        self.proc.send_signal(sig)
        return self.finish(CANCEL_BOUND, "trmtop to end after %s" % sig_name(sig))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def bg():
    started = []

    def _bg(*args):
        p = Trmtop(*args)
        started.append(p)
        return p

    yield _bg
    for p in started:
        p.kill()


def check_cancelled(res, sig, pid, what, rest):
    """Exit 128 + sig; the error line is exactly
    `trmtop: pid P: cancelled while <what> (SIG...); <rest>` (rest a regex,
    what one text or a tuple of the texts allowed), then optional hint
    lines."""
    assert res.rc == 128 + sig, res
    line = res.error_line()
    whats = (what,) if isinstance(what, str) else what
    want = r"trmtop: pid %d: cancelled while (%s) \(%s\); %s" % (
        pid, "|".join(re.escape(w) for w in whats), sig_name(sig), rest)
    assert re.fullmatch(want, line), "%r does not match %r: %r" % (line, want, res)
    assert "Traceback" not in res.err
    return line


def check_c_spin_after(t, trmtop):
    """The spin ended: the main thread serves commands; tracing is (or soon
    is) off; the target is healthy, and a normal cycle works."""
    wait_until(lambda: t.truth()["tracing"] is False, PROC_TIMEOUT,
               "the agent to end the cancelled session and turn tracing off")
    assert t.truth()["ticks"] == 1
    t.check_healthy()
    res = trmtop("start", "--pid", t.pid)
    assert res.rc == 0, res
    res = trmtop("stop", "--pid", t.pid)
    assert res.rc == 0, res
    assert t.truth()["tracing"] is False
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.output == b"shape: c_spin\nspun: 0\n" and t.stderr == b""


# ---------------------------------------------------------------------------
# Waiting --duration, tracing on


@pytest.mark.parametrize("sig,keep", [
    pytest.param(signal.SIGINT, False, id="INT-default"),
    pytest.param(signal.SIGTERM, False, id="TERM-default"),
    pytest.param(signal.SIGHUP, False, id="HUP-default"),
    pytest.param(signal.SIGINT, True, id="INT-keep-tracing"),  # one signal is enough
])
def test_cancel_during_duration(python, sig, keep, spawn, trmtop, bg, tmp_path):
    """`snapshot --duration 1h` with tracing on, waiting: a signal ends it
    at once with 128 + sig and says what was cancelled; tracing is off
    again as soon as trmtop has exited (even with --keep-tracing: the
    snapshot was not taken), no file is written, the target runs on."""
    base = baseline(python, "cpu_loop", str(tmp_path))
    t = spawn(python, "cpu_loop")
    out = os.path.join(str(tmp_path), "never.trm")
    p = bg("snapshot", "--pid", t.pid, "--duration", "1h", "-o", out, *(["--keep-tracing"] if keep else []))
    wait_until(lambda: p.proc.poll() is not None or t.truth()["tracing"], TRMTOP_TIMEOUT,
               "trmtop to turn tracing on")
    wait_until(p.waiting, TRMTOP_TIMEOUT, "trmtop to wait for --duration")
    res = p.signal(sig)
    # tracing is on in the target a moment before the agent's answer
    # reaches trmtop: the signal may still find it waiting for that
    check_cancelled(res, sig, t.pid, ("tracing before the snapshot",
                                      "waiting for the agent to start tracing"),
                    r"tracing left as found")
    assert res.out == ""
    # trmtop waited for the agent to end its session: off already
    assert t.truth()["tracing"] is False
    assert not os.path.exists(out)
    assert not stopped_or_traced(t.pid)
    t.check_healthy()
    t.check_progress()
    res = trmtop("stats", "--pid", t.pid, "--json")
    assert res.rc == 0 and res.json()["tracing"] == "off", res
    assert t.exit() == EXIT_CODE
    assert_same_outcome(t, base)


def test_cancel_leaves_others_tracing(python, spawn, trmtop, bg, tmp_path):
    """Tracing turned on by an earlier `trmtop start` is not this trmtop's:
    a cancelled snapshot leaves it on."""
    t = spawn(python, "cpu_loop")
    res = trmtop("start", "--pid", t.pid)
    assert res.rc == 0, res
    p = bg("snapshot", "--pid", t.pid, "--duration", "1h", "-o", os.path.join(str(tmp_path), "x.trm"))
    # tracing is on already: trmtop's next step is the --duration wait
    wait_until(p.waiting, TRMTOP_TIMEOUT, "trmtop to wait for --duration")
    res = p.signal(signal.SIGINT)
    check_cancelled(res, signal.SIGINT, t.pid, "tracing before the snapshot", r"tracing left as found")
    assert t.truth()["tracing"] is True
    res = trmtop("stop", "--pid", t.pid)
    assert res.rc == 0, res
    assert t.truth()["tracing"] is False
    t.check_healthy()
    assert t.exit() == EXIT_CODE


# ---------------------------------------------------------------------------
# Waiting for the agent while the target holds the GIL in C


def snapshot_stuck(python, spawn, bg, tmp_path):
    """c_spin (after-tracing): trmtop turns tracing on, the main thread then
    spins in C holding the GIL, and after --duration trmtop's snapshot
    request waits for an agent that cannot get the GIL.  Returns (target,
    trmtop, flag, output path) once both are seen waiting."""
    flag = spin_flag(tmp_path)
    t = spawn(python, "c_spin", args=[flag, "after-tracing"])
    out = os.path.join(str(tmp_path), "never.trm")
    # 2 s: the target starts its spin within ms of tracing on, long before
    p = bg("snapshot", "--pid", t.pid, "--duration", "2s", "-o", out)
    agent = sustained(lambda: agent_waits_for_gil(t.pid))
    wait_until(lambda: p.proc.poll() is not None or (agent() and p.waiting()), TRMTOP_TIMEOUT,
               "the agent to wait for the GIL and trmtop for its snapshot")
    return t, p, flag, out


@pytest.mark.parametrize("sig", SIGNALS)
def test_cancel_waiting_for_snapshot(python, sig, spawn, trmtop, bg, tmp_path):
    """The agent cannot answer (the GIL is held in C): a signal still ends
    trmtop within its clean-up bound, saying the agent ends the session
    once it can; when the spin ends, it does, and tracing is off."""
    t, p, flag, out = snapshot_stuck(python, spawn, bg, tmp_path)
    res = p.signal(sig)
    check_cancelled(res, sig, t.pid, "waiting for the agent's snapshot",
                    r"the agent has not ended its session within 2 s: it will once the target "
                    r"lets it run, with tracing left as found")
    assert re.search(r"^hint: .*GIL", res.err, re.M), res
    assert not os.path.exists(out)
    t.check_healthy()
    end_spin(flag)
    check_c_spin_after(t, trmtop)


def test_second_signal_skips_waiting(python, spawn, trmtop, bg, tmp_path):
    """A second SIGINT while trmtop waits for the agent to end the session
    (after the first one) ends the wait; nothing is left stopped, and the
    agent still leaves tracing as found."""
    t, p, flag, out = snapshot_stuck(python, spawn, bg, tmp_path)
    pipes = lambda: sum(1 for l in fd_links(p.pid).values() if l.startswith("pipe:"))
    before = pipes()
    assert p.proc.poll() is None, p.finish()
    p.proc.send_signal(signal.SIGINT)
    # the clean-up closes the control pipe first, then waits
    p.samples = []
    wait_until(lambda: p.proc.poll() is not None or (pipes() < before and p.waiting()),
               CANCEL_BOUND, "trmtop to close its control pipe and wait for the agent")
    res = p.signal(signal.SIGINT)
    check_cancelled(res, signal.SIGINT, t.pid, "waiting for the agent's snapshot",
                    r"not waiting for the agent after a second signal: it ends its session "
                    r"once the target lets it run, with tracing left as found")
    t.check_healthy()
    end_spin(flag)
    check_c_spin_after(t, trmtop)


@pytest.mark.parametrize("sig", SIGNALS)
def test_cancel_waiting_for_bootstrap(python, sig, spawn, trmtop, bg, tmp_path):
    """c_spin spinning from the start: trmtop queues a pending call and
    waits for the agent's greeting (--attach-timeout 60).  A signal ends
    the wait at once; the call left queued does nothing when it runs."""
    flag = spin_flag(tmp_path)
    t = spawn(python, "c_spin", args=[flag])
    wait_spinning(t, flag)
    fds0 = fd_links(t.pid)
    p = bg("snapshot", "--pid", t.pid, "--attach-timeout", "60", "-o",
           os.path.join(str(tmp_path), "never.trm"))
    # trmtop's pipes and memfd are in the target: the call is queued
    wait_until(lambda: p.proc.poll() is not None or (fd_links(t.pid) != fds0 and
                                                    not stopped_or_traced(t.pid) and p.waiting()),
               TRMTOP_TIMEOUT, "trmtop to queue its bootstrap and wait")
    res = p.signal(sig)
    check_cancelled(res, sig, t.pid, "attaching", r"nothing of trmtop's is left running in the target")
    t.check_healthy()
    end_spin(flag)
    check_c_spin_after(t, trmtop)


# ---------------------------------------------------------------------------
# SIGPIPE


def test_agent_goes_away_mid_request(python, spawn, bg, tmp_path):
    """The target dies while trmtop waits for its snapshot: exit 2 and a
    message saying the agent went away, never death by SIGPIPE (trmtop
    turned tracing on, and used to write STOP into the dead agent's
    pipe)."""
    t, p, flag, out = snapshot_stuck(python, spawn, bg, tmp_path)
    t.kill()
    res = p.finish(CANCEL_BOUND, "trmtop to notice the target's death")
    assert res.rc != -signal.SIGPIPE, "killed by SIGPIPE: %r" % res
    assert res.rc == 2, res
    line = res.error_line()
    assert re.fullmatch(r"trmtop: pid %d: the agent went away(: the target exited| "
                        r"\(the target may have exited\))" % t.pid, line), res
    assert not os.path.exists(out)


BIG_DUMP = r"""
import sys, tracemalloc
tracemalloc.start()
tracemalloc.take_snapshot().dump(sys.argv[2])
src = "".join("x%d = bytearray(%d)\n" % (i, 64 + i) for i in range(6000))
g = {}
exec(compile(src, "big_module.py", "exec"), g)
tracemalloc.take_snapshot().dump(sys.argv[1])
"""


@pytest.fixture(scope="module")
def big_trm(tmp_path_factory):
    """A .trm whose `top` report (6000 lines) is far larger than a pipe,
    and base.trm next to it, taken before those allocations."""
    d = tmp_path_factory.mktemp("bigtrm")
    subprocess.run(["/usr/bin/python3", "-c", BIG_DUMP, str(d / "big.pickle"),
                    str(d / "base.pickle")], check=True, timeout=120)
    for name in ("big", "base"):
        res = run_trmtop("import", str(d / (name + ".pickle")), "-o", str(d / (name + ".trm")))
        assert res.rc == 0, res
    return str(d / "big.trm")


def closed_reader(*args):
    """trmtop with stdout a pipe whose read end is already closed."""
    r, w = os.pipe()
    os.close(r)
    try:
        res = subprocess.run([trmtop_path()] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                             stdout=w, stderr=subprocess.PIPE, env=_env(), timeout=TRMTOP_TIMEOUT)
    finally:
        os.close(w)
    return Result(res.args, res.returncode, "", res.stderr.decode(errors="replace"))


@pytest.mark.parametrize("args", [
    pytest.param(["top", "--limit", "100000"], id="top"),
    pytest.param(["top", "--limit", "100000", "--format", "json"], id="top-json"),
    pytest.param(["export", "--to", "collapsed"], id="export"),
    pytest.param(["traceback", "--rank", "1"], id="traceback"),
])
def test_report_into_closed_pipe(big_trm, args):
    """A report into a pipe nobody reads: a quiet exit 0, not SIGPIPE."""
    res = closed_reader(args[0], big_trm, *args[1:])
    assert res.rc != -signal.SIGPIPE, "killed by SIGPIPE: %r" % res
    assert res.rc == 0 and res.err == "", res


def test_report_into_head(big_trm):
    """`trmtop top big.trm | head -1`: the reader takes one line and goes;
    trmtop ends quietly with 0."""
    proc = subprocess.Popen([trmtop_path(), "top", big_trm, "--limit", "100000"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env())
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    rc = proc.wait(timeout=TRMTOP_TIMEOUT)
    assert first.startswith(b"Top 6"), first  # 6000 lines and more
    assert rc != -signal.SIGPIPE, "killed by SIGPIPE"
    assert rc == 0 and err == b"", (rc, err)


def test_fail_above_into_closed_pipe(big_trm):
    """The reader's going does not hide a --fail-above failure: still 3,
    with its message and nothing about the pipe."""
    base = os.path.join(os.path.dirname(big_trm), "base.trm")
    res = closed_reader("diff", base, big_trm, "--fail-above", "1KiB", "--limit", "100000")
    assert res.rc == 3, res
    assert re.search(r"^trmtop: total growth .* exceeds --fail-above 1024 B$", res.err, re.M), res
    assert "pipe" not in res.err.lower(), res
