"""Faults: trmtop killed at every attach stage, abandoned pending calls, the
target dying during attach, and 100 start/stop cycles.  Run on a subset of
interpreters (oldest, newest, Debian's; conftest.faults_subset)."""

import os
import random
import re
import signal
import subprocess
import time

import pytest

from conftest import (end_spin, spin_flag, wait_spinning, EXIT_CODE, PROC_TIMEOUT, STAGES, TRMTOP_TIMEOUT, Paused, Result,
                      assert_same_outcome, baseline, check_error, fd_count,
                      fd_links, rss_bytes, stats, stopped_or_traced,
                      syscall_nr, thread_count, trmtop_path, wait_until, _env)

# Stages at which nothing of trmtop's can have run in the target yet: a kill
# there must leave tracing off, even once a queued call runs.
BEFORE_SCRIPT = ("seized", "remote", "queued", "hijack")

SIGNALS = [pytest.param(signal.SIGKILL, id="KILL"), pytest.param(signal.SIGINT, id="INT")]


def check_killed(res, sig):
    if sig == signal.SIGINT:
        # trmtop handles SIGINT: it restores and detaches, then exits (or
        # re-raises SIGINT); any other signal is a crash.
        assert res.rc >= 0 or res.rc == -signal.SIGINT, res
    else:
        assert res.rc == -signal.SIGKILL, res


def clean_cycle(t, trmtop):
    """After a fault a normal start/stats/stop still works and ends with
    tracing off."""
    res = trmtop("start", "--pid", t.pid)
    assert res.rc == 0, res
    assert stats(t.pid)["tracing"] == "trmtop"
    res = trmtop("stop", "--pid", t.pid)
    assert res.rc == 0, res
    assert t.truth()["tracing"] is False
    t.check_healthy()


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("shape", ["cpu_loop", "join_workers"])
def test_kill_at_stage(python_faults, shape, stage, sig, spawn, trmtop, tmp_path):
    python = python_faults
    base = baseline(python, shape, str(tmp_path))
    t = spawn(python, shape)
    p = Paused(["start", "--pid", t.pid], stage, str(tmp_path))
    if p.paused:
        check_killed(p.kill(sig), sig)
    else:
        # This attach path never reaches the stage: trmtop just finished.
        assert p.result.rc == 0, p.result
    t.check_healthy()
    t.check_progress()
    assert t.cmd("sync") == "ok"  # the main thread runs Python again
    assert t.cmd("sync") == "ok"
    t.check_healthy()
    if p.paused and stage in BEFORE_SCRIPT:
        truth = t.truth()
        assert truth["tracing"] is False, "killed at %s, tracing on: %r" % (stage, truth)
    clean_cycle(t, trmtop)
    assert t.exit() == EXIT_CODE
    assert_same_outcome(t, base)


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("stage", ["queued", "detached"])
def test_abandoned_pending_call(python_faults, stage, sig, spawn, trmtop, tmp_path):
    """The main thread spins in C holding the GIL (c_spin), so a pending call
    queued by trmtop cannot run; trmtop is killed at `stage`; then the spin
    ends, the left-behind call runs, and it must find trmtop gone and leave
    tracing off."""
    flag = spin_flag(tmp_path)
    t = spawn(python_faults, "c_spin", args=[flag])
    wait_spinning(t, flag)
    p = Paused(["start", "--pid", t.pid, "--attach-timeout", "60"], stage, str(tmp_path))
    if not p.paused:
        pytest.skip("this attach path never reached %s: %r" % (stage, p.result))
    check_killed(p.kill(sig), sig)
    t.check_healthy()
    end_spin(flag)
    truth = t.truth()  # served by the main thread after the spin
    assert truth["ticks"] == 1
    assert truth["tracing"] is False, "abandoned pending call turned tracing on: %r" % truth
    t.check_healthy()
    clean_cycle(t, trmtop)
    assert t.exit() == EXIT_CODE
    assert t.output == b"shape: c_spin\nspun: 0\n" and t.stderr == b""


# trmtop waiting (for a HELLO, a timeout or a child): poll, ppoll, select,
# pselect6, epoll_wait, epoll_pwait, nanosleep, clock_nanosleep, wait4, futex
WAITING = {7, 271, 23, 270, 232, 281, 35, 230, 61, 202}


def test_target_killed_during_attach(python_faults, spawn, trmtop_bin):
    """The target (busy in one long C call holding the GIL, so the attach
    cannot complete) is killed while trmtop waits: trmtop exits 2 with a
    message."""
    t = spawn(python_faults, "c_busy")
    t.may_die = True
    fds0 = set(fd_links(t.pid).values())
    proc = subprocess.Popen([trmtop_path(), "start", "--pid", str(t.pid), "--attach-timeout", "60"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env())
    samples = []

    def attaching():
        if proc.poll() is not None:
            return True
        if set(fd_links(t.pid).values()) != fds0 or stopped_or_traced(t.pid):
            return True  # trmtop's pipes/memfd are in the target, or it holds it
        nr = syscall_nr(proc.pid)
        samples.append(nr in WAITING)
        return samples[-3:] == [True] * 3  # trmtop is waiting on something

    try:
        wait_until(attaching, TRMTOP_TIMEOUT, "trmtop to be attaching")
        assert proc.poll() is None, "trmtop ended before the target was killed: rc %r %r" % (
            proc.returncode, proc.communicate())
        t.kill()
        out, err = proc.communicate(timeout=TRMTOP_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check_error(Result(proc.args, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")))


CYCLES = 100


def test_start_stop_cycles(python_cycles, spawn, trmtop):
    """100 start/stop cycles leave the target's fds and threads as before the
    first attach, and its RSS within 5% of what it was after the first cycle
    (which loads the agent once for good)."""
    t = spawn(python_cycles, "cpu_loop")
    fds0, threads0 = fd_count(t.pid), thread_count(t.pid)
    links0 = fd_links(t.pid)

    def cycle():
        res = trmtop("start", "--pid", t.pid)
        assert res.rc == 0, res
        res = trmtop("stop", "--pid", t.pid)
        assert res.rc == 0, res

    def settled():
        return fd_count(t.pid) == fds0 and thread_count(t.pid) == threads0

    cycle()
    wait_until(settled, PROC_TIMEOUT, "fds (%d) and threads (%d) to settle after the first cycle: %r"
               % (fds0, threads0, (fd_links(t.pid), links0, thread_count(t.pid))))
    rss0 = rss_bytes(t.pid)
    for i in range(CYCLES):
        cycle()
        if i % 25 == 0:
            t.check_healthy()
            assert t.truth()["tracing"] is False
    wait_until(settled, PROC_TIMEOUT, "fds (%d) and threads (%d) to settle after %d cycles: %r"
               % (fds0, threads0, CYCLES, (fd_links(t.pid), links0, thread_count(t.pid))))
    rss = rss_bytes(t.pid)
    assert abs(rss - rss0) <= 0.05 * rss0, "RSS %d after %d cycles, %d after the first" % (rss, CYCLES, rss0)
    t.check_healthy()
    t.check_progress()
    assert t.truth()["tracing"] is False
    assert t.exit() == EXIT_CODE


CHURN_CYCLES = 40


def test_attach_while_threads_come_and_go(python, spawn, trmtop, tmp_path):
    """Threads start and end all the time (a pool growing and shrinking):
    every attach must pick a thread that is safely parked, never one that
    is half born or dying; the target computes correctly throughout."""
    base = baseline(python, "thread_churn", str(tmp_path))
    t = spawn(python, "thread_churn")
    for _ in range(CHURN_CYCLES):
        res = trmtop("start", "--pid", t.pid)
        assert res.rc == 0, res
        res = trmtop("stop", "--pid", t.pid)
        assert res.rc == 0, res
        t.check_healthy()
    assert t.truth()["tracing"] is False
    assert t.exit() == EXIT_CODE
    assert_same_outcome(t, base)


def test_sampler_while_threads_come_and_go(python_faults, spawn, trmtop, tmp_path):
    """The same churn of threads while the sampler is started and stopped
    40 times (its hooks put in and taken out of the allocators while new
    threads allocate): the target computes correctly throughout, and the
    sampler is off at the end."""
    base = baseline(python_faults, "thread_churn", str(tmp_path))
    t = spawn(python_faults, "thread_churn")
    for _ in range(CHURN_CYCLES):
        res = trmtop("start", "--pid", t.pid, "--sample=16KiB")
        assert res.rc == 0, res
        res = trmtop("stop", "--pid", t.pid)
        assert res.rc == 0, res
        t.check_healthy()
    assert sampler_off(t.pid)
    assert t.exit() == EXIT_CODE
    assert_same_outcome(t, base)


# trmtop SIGKILLed at random instants of an attach and a snapshot: inside
# remote calls, between them, while the agent answers.  TRMTOP_KILL_RUNS
# sets the runs per interpreter and shape (50: 300 in all over the three
# interpreters of faults_subset); TRMTOP_FAULT_SEED replays a failure.
KILL_RUNS = int(os.environ.get("TRMTOP_KILL_RUNS", "50"))


def trmtop_memfds(pid):
    """Names of trmtop's memfds the target maps (the agent, once loaded)."""
    with open("/proc/%d/maps" % pid) as f:
        return set(re.findall(r"/memfd:(trmtop[^ \n]*)", f.read()))


def sampler_off(pid):
    return "sample_size" not in stats(pid)


@pytest.mark.parametrize("shape,mode", [("sleep_loop", "snapshot"), ("cpu_loop", "snapshot"),
                                        ("sleep_loop", "sampled-view"),
                                        ("cpu_loop", "sampled-view")])
def test_random_kills(python_faults, shape, mode, spawn, trmtop, tmp_path):
    """One long-lived target; trmtop snapshot (attach, start, 20 ms of
    tracing, snapshot, stop), or a sampled live view (attach, the sampler
    started, two refreshes 10 ms apart, the session ended), is SIGKILLed
    KILL_RUNS times at an instant drawn uniformly over the time a whole
    one takes.
    After each kill the target runs, is neither stopped nor traced, and
    gets back exactly its fds and threads with tracing and the sampler
    off; in the end it still works, answers, and exits as it would have."""
    seed = int(os.environ.get("TRMTOP_FAULT_SEED") or random.SystemRandom().randrange(1 << 32))
    rnd = random.Random(seed)
    out = os.path.join(str(tmp_path), "s.trm")
    t = spawn(python_faults, shape)
    fds0, threads0 = fd_links(t.pid), thread_count(t.pid)
    if mode == "snapshot":
        cmd = ["snapshot", "--pid", str(t.pid), "--duration", "20ms", "-o", out]
    else:
        cmd = ["--pid", str(t.pid), "--sample=64KiB", "--batch", "--iterations", "2",
               "--interval", "10ms"]
    t0 = time.monotonic()
    res = trmtop(*cmd)
    window = time.monotonic() - t0
    assert res.rc == 0, res
    for run in range(KILL_RUNS):
        delay = rnd.uniform(0, window * 1.2)
        where = "seed %d run %d: killed after %.2f ms of %.2f" % (seed, run, delay * 1e3, window * 1e3)
        proc = subprocess.Popen([trmtop_path()] + cmd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=_env())
        # not a synchronisation: the delay is where the fault is injected
        time.sleep(delay)
        proc.kill()
        proc.wait()
        assert t.alive(), "%s: target died: %s" % (where, t._diag())
        t.check_healthy()
        wait_until(lambda: fd_links(t.pid) == fds0 and thread_count(t.pid) == threads0,
                   PROC_TIMEOUT, "%s: the target's fds %r and %d threads back (now %r, %d)"
                   % (where, fds0, threads0, fd_links(t.pid), thread_count(t.pid)))
        wait_until(lambda: t.truth()["tracing"] is False, PROC_TIMEOUT,
                   "%s: tracing off again" % where)
        if mode != "snapshot":
            wait_until(lambda: sampler_off(t.pid), PROC_TIMEOUT, "%s: the sampler off again" % where)
        assert len(trmtop_memfds(t.pid)) <= 1, "%s: %r" % (where, trmtop_memfds(t.pid))
    t.check_progress()
    clean_cycle(t, trmtop)
    assert t.exit() == EXIT_CODE
    assert t.stderr == b"", t.stderr


def test_killed_inside_a_remote_call(python_faults, spawn, trmtop, tmp_path):
    """trmtop hijacks a parked worker while the main thread spins in C
    holding the GIL, so the worker's remote call (Ensure, bootstrap,
    Release) waits for the GIL; trmtop is SIGKILLed right then.  When the
    spin ends, the worker finishes the call by itself (the bootstrap finds
    trmtop gone), restores itself and serves again: nothing of trmtop's
    stays, tracing is off, the target exits as it would have."""
    flag = spin_flag(tmp_path)
    t = spawn(python_faults, "c_spin_worker", args=[flag])
    wait_spinning(t, flag)
    fds0, threads0 = fd_links(t.pid), thread_count(t.pid)
    proc = subprocess.Popen([trmtop_path(), "start", "--pid", str(t.pid), "--attach-timeout", "60"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env())

    def in_call():
        # a thread traced by trmtop and waiting on a futex: the GIL, in
        # PyGILState_Ensure of the hijack's remote call (the worker's own
        # wait is a read)
        if proc.poll() is not None:
            return True
        for tid in os.listdir("/proc/%d/task" % t.pid):
            tid = int(tid)
            try:
                with open("/proc/%d/task/%d/status" % (t.pid, tid)) as f:
                    st = f.read()
            except FileNotFoundError:
                continue
            if re.search(r"^TracerPid:\s*%d$" % proc.pid, st, re.M) and \
                    syscall_nr(t.pid, tid) == 202:
                return True
        return False

    try:
        wait_until(in_call, TRMTOP_TIMEOUT, "trmtop's remote call to wait for the GIL")
        assert proc.poll() is None, "trmtop ended: rc %r" % proc.returncode
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    t.check_healthy()
    end_spin(flag)
    assert t.truth()["tracing"] is False  # served by the main thread, after the spin
    assert t.cmd("worker") == "ok"
    wait_until(lambda: fd_links(t.pid) == fds0 and thread_count(t.pid) == threads0,
               PROC_TIMEOUT, "the target's fds and threads back (%r, %d)"
               % (fd_links(t.pid), thread_count(t.pid)))
    assert len(trmtop_memfds(t.pid)) <= 1
    t.check_healthy()
    clean_cycle(t, trmtop)
    assert t.exit() == EXIT_CODE
    assert t.output == b"shape: c_spin_worker\nspun: 0\n" and t.stderr == b""
