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


def hint(res):
    """The text of the `hint:` line (the test fails without one)."""
    hints = [l[len("hint: "):] for l in res.err.splitlines() if l.startswith("hint: ")]
    assert hints, "no hint line: %r" % res
    return hints[0]


def status_field(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split(":", 1)[1].strip()
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def kernel_thread():
    """A kernel thread visible here: kthreadd (pid 2) in the initial PID
    namespace, else any task that says Kthread: 1."""
    if status_field(2, "Name") == "kthreadd":
        return 2
    for d in sorted(os.listdir("/proc"), key=lambda d: (len(d), d)):
        if d.isdigit() and status_field(int(d), "Kthread") == "1":
            return int(d)
    return None


def test_kernel_thread(trmtop):
    """A kernel thread: said to be one, not 'read /proc/2/maps: empty'."""
    pid = kernel_thread()
    if pid is None:
        pytest.skip("no kernel thread is visible in this PID namespace")
    res = trmtop("start", "--pid", pid)
    line = check_error(res, str(pid), "kernel thread")
    assert "maps" not in line, res
    assert "Python" in hint(res)


def run_as_nobody(argv, **kw):
    return subprocess.Popen(argv, user=65534, group=65534, extra_groups=[], cwd="/", **kw)


def test_not_dumpable(trmtop):
    """A process of trmtop's own user that made itself non-dumpable: the
    kernel lets only CAP_SYS_PTRACE trace it, and trmtop says so (not
    "missing CAP_SYS_PTRACE ... --cap-add", nor "another user")."""
    if os.getuid() != 0:
        pytest.skip("needs root, to run the target and trmtop as another user")
    try:
        target = run_as_nobody([sys.executable, "-E", "-S", os.path.join(TARGETS, "nondumpable.py")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    except PermissionError as e:
        pytest.skip("nobody cannot run %s: %s" % (sys.executable, e))
    try:
        assert target.stdout.readline() == b"ready\n", "the target did not start"
        res = trmtop("start", "--pid", target.pid, user=65534, group=65534, extra_groups=[])
        if res.rc in (126, 127):
            pytest.skip("nobody cannot execute the trmtop binary: %r" % res)
        line = check_error(res, str(target.pid), "non-dumpable")
        assert "another user" not in line and "--cap-add" not in res.err, res
        assert "root" in hint(res)
        assert not stopped_or_traced(target.pid)
        # as root (CAP_SYS_PTRACE) it is a Python process like any other
        assert stats(target.pid)["tracing"] == "off"
    finally:
        target.stdin.close()
        assert target.wait(timeout=60) == 0


def pid1_readable():
    try:
        return os.readlink("/proc/1/exe")
    except PermissionError:
        return None


def test_host_init(trmtop):
    """PID 1 of the host: refused by the kernel here or not, trmtop says
    what is true (not 'missing CAP_SYS_PTRACE ... --cap-add')."""
    if os.stat("/proc/self/ns/pid").st_ino != 0xEFFFFFFC:
        pytest.skip("not in the initial PID namespace: pid 1 is not the host's init")
    exe = pid1_readable()
    if exe is not None and "python" in os.path.basename(exe):
        pytest.skip("pid 1 is a Python process (%s): not attaching to it" % exe)
    res = trmtop("stats", "--pid", 1)
    if exe is None:
        # refused even to read its executable: trmtop explains the refusal
        line = check_error(res, "attach to 1", "host's init")
        assert "--cap-add" not in res.err, res
        hint(res)
    else:
        check_error(res, "pid 1", "not a Python process")
    assert not stopped_or_traced(1)


def test_not_a_snapshot(trmtop):
    """A file that is no snapshot (one of /proc's, whose size reads 0):
    exit 4 and 'not a trmtop snapshot', not 'truncated at byte 0'."""
    res = trmtop("top", "/proc/self/status")
    assert res.rc == 4, res
    assert res.out == "", res
    assert res.err.splitlines() == [
        "trmtop: /proc/self/status: not a trmtop snapshot: magic mismatch (neither a "
        ".trm file nor a tracemalloc dump at byte 0)"], res
