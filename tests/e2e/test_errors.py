"""Refusals and attach errors: exit code 2 and a `trmtop: <what>: <why>` line
(then optional `hint:` lines); the target is left untouched."""

import os
import select
import signal
import subprocess
import sys

import pytest

from conftest import (EXIT_CODE, PROC_TIMEOUT, TARGETS, check_error, stats,
                      stopped_or_traced, syscall_nr, task_state, wait_until)

COMMANDS = (("start",), ("stats", "--json"), ("stop",))


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    assert not os.path.exists("/proc/%d" % p.pid)
    return p.pid


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c[0])
def test_no_such_pid(trmtop, cmd):
    pid = dead_pid()
    res = trmtop(cmd[0], "--pid", pid, *cmd[1:])
    check_error(res, str(pid))


def test_not_python(trmtop):
    sleeper = subprocess.Popen(["sleep", "1000"])
    try:
        wait_until(lambda: os.path.basename(os.readlink("/proc/%d/exe" % sleeper.pid)) == "sleep",
                   PROC_TIMEOUT, "sleep to exec")
        res = trmtop("start", "--pid", sleeper.pid)
        check_error(res, str(sleeper.pid))
        assert "python" in res.error_line().lower()
        assert not stopped_or_traced(sleeper.pid)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_unsupported_version(old_python, spawn, trmtop):
    """Pythons older than 3.8 and free-threaded builds: exit 2, the version
    named, a hint that says what is supported."""
    t = spawn(old_python, "old_python")
    res = trmtop("start", "--pid", t.pid)
    words = ["%d.%d" % old_python.version[:2]]
    if old_python.free_threaded:
        words.append("free-threaded")
    check_error(res, *words)
    assert any(l.startswith("hint: ") for l in res.err.splitlines()), res
    t.check_healthy()
    assert t.cmd("ping") == "pong"
    assert t.exit() == EXIT_CODE


def test_permission_denied(python, spawn, trmtop):
    if os.getuid() != 0:
        pytest.skip("needs root, to run trmtop as an unprivileged user against our target")
    t = spawn(python, "cpu_loop")
    try:
        res = trmtop("start", "--pid", t.pid, user=65534, group=65534, extra_groups=[])
    except PermissionError as e:
        pytest.skip("nobody cannot execute the trmtop binary: %s" % e)
    if res.rc in (126, 127):
        pytest.skip("nobody cannot execute the trmtop binary: %r" % res)
    check_error(res, "permission")
    t.check_healthy()
    assert t.truth()["tracing"] is False
    assert t.exit() == EXIT_CODE


def test_already_traced(python, spawn, trmtop, tmp_path):
    t = spawn(python, "cpu_loop")
    fifo = os.path.join(str(tmp_path), "holder")
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    holder = subprocess.Popen([sys.executable, os.path.join(TARGETS, "ptrace_holder.py"), str(t.pid), fifo],
                              stdin=subprocess.PIPE)
    try:
        assert select.select([fd], [], [], 60)[0], "ptrace holder did not report"
        assert os.read(fd, 100) == b"ready\n"
        res = trmtop("start", "--pid", t.pid)
        check_error(res)
        assert str(holder.pid) in res.err, res
        assert holder.poll() is None
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
        os.close(fd)
    t.check_healthy()
    assert t.truth()["tracing"] is False
    # Once the other tracer is gone, trmtop attaches.
    assert stats(t.pid)["tracing"] == "off"
    assert t.exit() == EXIT_CODE


def test_stopped_target(python, spawn, trmtop):
    """A stopped target (state T) is refused, and left as it was."""
    t = spawn(python, "cpu_loop")
    os.kill(t.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: task_state(t.pid, t.pid) == "T", PROC_TIMEOUT, "target to stop")
        res = trmtop("start", "--pid", t.pid)
        check_error(res)
        assert task_state(t.pid, t.pid) == "T"
    finally:
        os.kill(t.pid, signal.SIGCONT)
    t.check_healthy()
    assert t.truth()["tracing"] is False
    assert t.exit() == EXIT_CODE


def test_attach_timeout(python, spawn, trmtop):
    """No thread at a safe point and none parked with the GIL released (the
    only thread blocks in read() holding the GIL): trmtop gives up after
    --attach-timeout naming what the main thread is blocked in.  Whatever it
    may have left queued runs when the thread wakes and must not turn
    tracing on."""
    r, w = os.pipe()
    try:
        t = spawn(python, "c_blocked", args=[r], pass_fds=[r])
    finally:
        os.close(r)
    try:
        wait_until(lambda: syscall_nr(t.pid) == 0, PROC_TIMEOUT, "main thread to block in read")
        res = trmtop("start", "--pid", t.pid, "--attach-timeout", "1")
        check_error(res, "read")
        t.check_healthy()
        os.write(w, b"x")
    finally:
        os.close(w)
    truth = t.truth()  # served by the main thread once read() returned
    assert truth["ticks"] == 1
    assert truth["tracing"] is False, "a left-behind call turned tracing on: %r" % truth
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.output == b"shape: c_blocked\nread: 1\n"
    assert t.stderr == b""
