"""The shape matrix: every interpreter x every target shape.

start -> the target allocates 20 MiB from a known line -> `stats --json`
within 5% of the target's own tracemalloc -> a second start/stats reconnects
-> stop -> `stats` says off (the application's tracing stays on) -> the
target's report, stdout, stderr and exit code equal an unattached run's.
"""

import hashlib
import os
import select
import socket
import subprocess
import threading
import time

import pytest

from conftest import (EXIT_CODE, HELD_BYTES, PROC_TIMEOUT, REPLY_TIMEOUT, _read,
                      assert_close, assert_same_outcome, baseline, fd_links,
                      inline_target, maps_libpython, stats, stopped_or_traced, wait_until)

FRAMES = 3
APP_FRAMES = 5  # tests/targets/app_tracemalloc.py


def check_stats(s, t, tracing, limit):
    py = t.python
    assert s["pid"] == t.pid
    assert os.path.realpath(s["executable"]) == py.executable
    assert s["python_version"].startswith("%d.%d.%d" % py.version), s["python_version"]
    assert s["libpython"] == ("shared" if maps_libpython(t.pid) else "static")
    assert s["pie"] is py.pie
    assert s["tracing"] == tracing
    for k in ("traceback_limit", "traced_current", "traced_peak", "tracemalloc_memory",
              "traced_blocks", "rss"):
        assert isinstance(s[k], int) and not isinstance(s[k], bool) and s[k] >= 0, (k, s)
    assert s["rss"] > 0
    if tracing != "off":
        assert s["traceback_limit"] == limit
        assert s["traced_peak"] >= s["traced_current"] > 0
        assert s["traced_blocks"] > 0 and s["tracemalloc_memory"] > 0


def measure(t, tracing, limit):
    """stats, then the target's own truth right after; compared within 5%."""
    s = stats(t.pid)
    truth = t.truth()
    check_stats(s, t, tracing, limit)
    assert truth["tracing"] is True and truth["limit"] == limit
    assert_close(s["traced_current"], truth["current"])
    assert truth["current"] >= HELD_BYTES
    return s


# --- per-shape traffic: the same in the attached and the unattached run -------


class Traffic(object):
    """Default: the shape's report does not depend on what the test does."""

    args = ()
    pass_fds = ()

    def before(self, t):
        pass

    def during_start(self, t, run_start):
        return run_start()

    def while_tracing(self, t):
        pass

    def after(self, t):
        pass

    def cleanup(self):
        pass


class EchoTraffic(Traffic):
    """asyncio_server: requests before attach, while tracing, after stop."""

    def __init__(self):
        self.n = 0

    def _requests(self, t, count):
        with socket.create_connection(("127.0.0.1", t.info["port"]), timeout=60) as s:
            f = s.makefile("rwb")
            for _ in range(count):
                line = b"request %d" % self.n
                self.n += 1
                f.write(line + b"\n")
                f.flush()
                assert f.readline() == b"echo " + line + b"\n"

    def before(self, t):
        self._requests(t, 3)

    def while_tracing(self, t):
        self._requests(t, 2)

    def after(self, t):
        self._requests(t, 3)


CHUNK = 8192
CHUNKS = 4000          # 32 MiB in all
BEFORE_CHUNKS = 200
MAX_DURING = 2000


def chunk(i):
    return i.to_bytes(8, "little") * (CHUNK // 8)


class PipeTraffic(Traffic):
    """pipe_reader: a fixed stream, written before, during (a thread writes
    while trmtop attaches) and after the attach."""

    def __init__(self):
        self.r, self.w = os.pipe()
        self.args = (self.r,)
        self.pass_fds = (self.r,)
        self.next = 0
        self.stalled = False
        os.set_blocking(self.w, False)

    def _write(self, upto, stop=None):
        # Non-blocking with a deadline: a target that stopped reading fails
        # the test instead of hanging it.
        deadline = time.monotonic() + REPLY_TIMEOUT
        while self.next < upto and not (stop and stop.is_set()):
            data = chunk(self.next)
            while data:
                if not select.select([], [self.w], [], 0.2)[1]:
                    if time.monotonic() > deadline:
                        self.stalled = True
                        return
                    continue
                data = data[os.write(self.w, data):]
            self.next += 1

    def before(self, t):
        os.close(self.r)
        self.r = -1
        self._write(BEFORE_CHUNKS)

    def during_start(self, t, run_start):
        stop = threading.Event()
        th = threading.Thread(target=self._write, args=(BEFORE_CHUNKS + MAX_DURING, stop))
        th.start()
        try:
            return run_start()
        finally:
            stop.set()
            th.join()
            assert not self.stalled, "target stopped reading its pipe during attach"

    def after(self, t):
        self._write(CHUNKS)
        assert not self.stalled, "target stopped reading its pipe"
        os.close(self.w)
        self.w = -1

    def cleanup(self):
        for fd in (self.r, self.w):
            if fd != -1:
                os.close(fd)

    @staticmethod
    def expected_report():
        h = hashlib.sha256()
        for i in range(CHUNKS):
            h.update(chunk(i))
        return b"shape: pipe_reader\nbytes: %d\nsha256: %s\n" % (CHUNK * CHUNKS, h.hexdigest().encode())


TRAFFIC = {"asyncio_server": EchoTraffic, "pipe_reader": PipeTraffic}

SHAPES = ("cpu_loop", "sleep_loop", "join_workers", "all_blocked", "asyncio_server",
          "app_tracemalloc", "pipe_reader")


def unattached(python, shape, spawn):
    traffic = TRAFFIC[shape]()
    try:
        t = spawn(python, shape, args=traffic.args, pass_fds=traffic.pass_fds)
        traffic.before(t)
        traffic.during_start(t, lambda: None)
        t.ok("alloc %d" % HELD_BYTES)
        t.truth()
        traffic.while_tracing(t)
        t.ok("free")
        traffic.after(t)
        t.exit()
    finally:
        traffic.cleanup()
    return t.outcome()


@pytest.mark.parametrize("shape", SHAPES)
def test_attach(python, shape, spawn, trmtop, tmp_path):
    app = shape == "app_tracemalloc"
    tracing, limit = ("application", APP_FRAMES) if app else ("trmtop", FRAMES)
    if shape in TRAFFIC:
        base = unattached(python, shape, spawn)
        traffic = TRAFFIC[shape]()
    else:
        base = baseline(python, shape, str(tmp_path))
        traffic = Traffic()
    try:
        t = spawn(python, shape, args=traffic.args, pass_fds=traffic.pass_fds)
        traffic.before(t)

        res = traffic.during_start(t, lambda: trmtop("start", "--pid", t.pid, "--frames", FRAMES))
        assert res.rc == 0, res
        t.check_healthy()
        t.ok("alloc %d" % HELD_BYTES)
        measure(t, tracing, limit)

        # A second start reconnects to the loaded agent: same state, same limit.
        res = trmtop("start", "--pid", t.pid, "--frames", FRAMES)
        assert res.rc == 0, res
        t.check_healthy()
        measure(t, tracing, limit)
        traffic.while_tracing(t)

        res = trmtop("stop", "--pid", t.pid)
        assert res.rc == 0, res
        t.check_healthy()
        s = stats(t.pid)
        check_stats(s, t, "application" if app else "off", limit)
        truth = t.truth()
        if app:
            assert truth["tracing"] is True and truth["limit"] == APP_FRAMES
            assert_close(s["traced_current"], truth["current"])
        else:
            assert truth["tracing"] is False, "tracing still on after stop: %r" % truth
        t.check_healthy()

        t.ok("free")
        traffic.after(t)
        if shape != "pipe_reader":
            assert t.cmd("sync") == "ok"  # the main thread still loops
        assert t.exit() == EXIT_CODE
    finally:
        traffic.cleanup()
    assert_same_outcome(t, base)
    if shape == "pipe_reader":
        assert t.output == PipeTraffic.expected_report()


def test_stats_without_start(python, spawn, trmtop):
    """stats on a target nobody traced: tracing off, and it stays off."""
    t = spawn(python, "cpu_loop")
    s = stats(t.pid)
    check_stats(s, t, "off", None)
    assert t.truth()["tracing"] is False
    t.check_healthy()
    assert t.exit() == EXIT_CODE


def test_stop_keeps_application_tracing(python, spawn, trmtop):
    """stop without a trmtop start never turns off the application's tracing."""
    t = spawn(python, "app_tracemalloc")
    res = trmtop("stop", "--pid", t.pid)
    assert res.rc in (0, 2), res
    truth = t.truth()
    assert truth["tracing"] is True and truth["limit"] == APP_FRAMES
    assert stats(t.pid)["tracing"] == "application"
    t.check_healthy()
    assert t.exit() == EXIT_CODE


def test_target_in_its_own_pid_namespace(python_faults, trmtop):
    """A target in a PID namespace of its own (as in a container): the
    signal its own remote calls raise carries its pid in that namespace,
    not trmtop's view of it; start, stats and stop work, and it keeps no fd
    of trmtop's."""
    if os.getuid() != 0:
        pytest.fail("needs root (unshare -p)")
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", python_faults.path, "-c",
         "import sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read()
        kids = _read("/proc/%d/task/%d/children" % (proc.pid, proc.pid)).split()
        assert len(kids) == 1, kids
        pid = int(kids[0])
        nspid = _read("/proc/%d/status" % pid).split("NSpid:")[1].split("\n")[0].split()
        assert len(nspid) == 2 and int(nspid[1]) != pid, nspid
        fds0 = fd_links(pid)
        res = trmtop("start", "--pid", pid)
        assert res.rc == 0, res
        assert stats(pid)["tracing"] == "trmtop"
        res = trmtop("stop", "--pid", pid)
        assert res.rc == 0, res
        wait_until(lambda: fd_links(pid) == fds0, PROC_TIMEOUT, "the target's fds back")
        assert not stopped_or_traced(pid)
    finally:
        proc.kill()
        proc.wait()


MAPS_LIBC = r'''
import mmap, re, sys
# map our own libc file read-only, below the loaded one (mmap goes down):
# what a process that reads ELF files (libelf, a profiler) does
libc = re.search(r" (/\S*/libc\.so[.\d]*)\n", open("/proc/self/maps").read()).group(1)
with open(libc, "rb") as f:
    view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.read()
'''


def test_target_maps_its_own_libc(python_faults, trmtop):
    """The target has a second, read-only mapping of its libc file at
    offset 0, below the loaded libc: the symbols are still taken from the
    loaded one (taken from the other, every remote call jumped into
    non-executable memory and crashed the target)."""
    with inline_target(python_faults, MAPS_LIBC) as proc:
        res = trmtop("start", "--pid", proc.pid)
        assert res.rc == 0, res
        assert stats(proc.pid)["tracing"] == "trmtop"
        assert trmtop("stop", "--pid", proc.pid).rc == 0
        assert proc.poll() is None, "the target died"
        assert not stopped_or_traced(proc.pid)
