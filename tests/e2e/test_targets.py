"""The targets and the ground-truth protocol on their own, without trmtop:
each shape starts, is in the state it claims (checked in /proc), answers
commands, and exits with code 7 and a deterministic report."""

import os
import subprocess
import sys

import pytest

from conftest import (end_spin, spin_flag, wait_spinning, EXIT_CODE, HELD_BYTES, MIB, PROC_TIMEOUT, TARGETS,
                      assert_close, assert_same_outcome, baseline,
                      stopped_or_traced, syscall_nr, task_state, tids, wait_until)

# x86_64 syscall numbers of the calls the shapes block in
READ, SELECT, ACCEPT, FUTEX, CLOCK_NANOSLEEP, EPOLL_WAIT, PSELECT6, EPOLL_PWAIT, ACCEPT4, EPOLL_PWAIT2 = (
    0, 23, 43, 202, 230, 232, 270, 281, 288, 441)

BLOCKED_IN = {
    "sleep_loop": {SELECT, PSELECT6, CLOCK_NANOSLEEP},
    "join_workers": {FUTEX},
    "all_blocked": {ACCEPT, ACCEPT4},
    "asyncio_server": {EPOLL_WAIT, EPOLL_PWAIT, EPOLL_PWAIT2},
    "pipe_reader": {READ},
}

SIMPLE_SHAPES = ("cpu_loop", "sleep_loop", "join_workers", "all_blocked", "app_tracemalloc")


def test_alloc_line_marker():
    with open(os.path.join(TARGETS, "_common.py")) as f:
        assert sum("ALLOC-LINE" in l for l in f) == 1


def _exercise(t):
    assert t.cmd("ping") == "pong"
    before = t.truth()
    t.ok("alloc %d" % HELD_BYTES)
    after = t.truth()
    if t.shape == "app_tracemalloc":
        assert before["tracing"] and before["limit"] == 5
        assert_close(after["current"] - before["current"], HELD_BYTES, "held allocation")
    else:
        assert not before["tracing"] and not after["tracing"]
    ans = t.cmd("sync")
    assert ans == ("unsupported" if t.shape == "pipe_reader" else "ok")
    t.ok("free")
    if t.shape == "app_tracemalloc":
        assert t.truth()["current"] < before["current"] + MIB


@pytest.mark.parametrize("shape", SIMPLE_SHAPES)
def test_shape(python, shape, spawn, tmp_path):
    t = spawn(python, shape)
    main = t.pid
    if shape in BLOCKED_IN:
        wait_until(lambda: syscall_nr(main) in BLOCKED_IN[shape], PROC_TIMEOUT,
                   "main thread of %s to block in %s" % (shape, BLOCKED_IN[shape]))
    else:
        wait_until(lambda: t.progress()["ticks"] >= 2, PROC_TIMEOUT, "CPU loop to run")
    if shape == "join_workers":
        # the workers compute while the main thread waits
        t.check_progress()
    _exercise(t)
    assert not stopped_or_traced(t.pid)
    assert t.exit() == EXIT_CODE
    assert_same_outcome(t, baseline(python, shape, str(tmp_path)))


def _echo(port, lines):
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rwb")
        got = []
        for l in lines:
            f.write(l + b"\n")
            f.flush()
            got.append(f.readline())
        return got


def test_asyncio_server(python, spawn):
    outs = []
    for _ in range(2):
        t = spawn(python, "asyncio_server")
        port = t.info["port"]
        assert _echo(port, [b"a", b"bc"]) == [b"echo a\n", b"echo bc\n"]
        wait_until(lambda: syscall_nr(t.pid) in BLOCKED_IN["asyncio_server"], PROC_TIMEOUT,
                   "asyncio loop to idle in epoll")
        _exercise(t)
        assert _echo(port, [b"def"]) == [b"echo def\n"]
        assert t.exit() == EXIT_CODE
        assert t.stderr == b""
        outs.append(t.outcome())
    assert outs[0] == outs[1]
    assert b"requests: 3\n" in outs[0]["output"]


def test_pipe_reader(python, spawn):
    import hashlib
    payload = b"".join(i.to_bytes(8, "little") * 512 for i in range(300))
    outs = []
    for _ in range(2):
        r, w = os.pipe()
        try:
            t = spawn(python, "pipe_reader", args=[r], pass_fds=[r])
        finally:
            os.close(r)
        wait_until(lambda: syscall_nr(t.pid) == READ, PROC_TIMEOUT, "reader to block in read")
        _exercise(t)
        with os.fdopen(w, "wb") as f:
            f.write(payload)
        assert t.exit() == EXIT_CODE
        outs.append(t.outcome())
    assert outs[0] == outs[1]
    assert outs[0]["output"] == b"shape: pipe_reader\nbytes: %d\nsha256: %s\n" % (
        len(payload), hashlib.sha256(payload).hexdigest().encode())


def test_c_blocked(python, spawn):
    r, w = os.pipe()
    try:
        t = spawn(python, "c_blocked", args=[r], pass_fds=[r])
    finally:
        os.close(r)
    wait_until(lambda: syscall_nr(t.pid) == READ, PROC_TIMEOUT, "main thread to block in read")
    assert len(tids(t.pid)) == 1
    os.write(w, b"x")
    os.close(w)
    truth = t.truth()
    assert truth["ticks"] == 1 and not truth["tracing"]
    assert t.exit() == EXIT_CODE
    assert t.output == b"shape: c_blocked\nread: 1\n" and t.stderr == b""


def test_c_busy(python, spawn):
    t = spawn(python, "c_busy")
    wait_until(lambda: task_state(t.pid, t.pid) == "R", PROC_TIMEOUT, "c_busy to run")
    assert len(tids(t.pid)) == 1
    t.kill()


def test_c_spin(python, spawn, tmp_path):
    flag = spin_flag(tmp_path)
    t = spawn(python, "c_spin", args=[flag])
    wait_spinning(t, flag)
    assert len(tids(t.pid)) == 1
    end_spin(flag)
    truth = t.truth()
    assert truth["ticks"] == 1 and not truth["tracing"]
    assert t.exit() == EXIT_CODE
    assert t.output == b"shape: c_spin\nspun: 0\n" and t.stderr == b""


def test_old_python(old_python, spawn):
    t = spawn(old_python, "old_python")
    assert t.cmd("ping") == "pong"
    assert t.exit() == EXIT_CODE


def test_ptrace_holder(python, spawn, tmp_path):
    t = spawn(python, "cpu_loop")
    fifo = os.path.join(str(tmp_path), "holder")
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    holder = subprocess.Popen([sys.executable, os.path.join(TARGETS, "ptrace_holder.py"), str(t.pid), fifo],
                              stdin=subprocess.PIPE)
    try:
        import select
        select.select([fd], [], [], 30)
        assert os.read(fd, 100) == b"ready\n"
        assert "TracerPid %d" % holder.pid in stopped_or_traced(t.pid)
        t.check_progress()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        os.close(fd)
    t.check_healthy()
    assert t.exit() == EXIT_CODE
