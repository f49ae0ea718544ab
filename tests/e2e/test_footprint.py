"""What trmtop leaves in a target: modules, heap blocks, fds, mappings,
after sessions and after attaches that gave up (DESIGN.md, "What the
target keeps")."""

import fcntl
import os
import signal
import subprocess

import pytest

from conftest import (EXIT_CODE, PROC_TIMEOUT, TRMTOP_TIMEOUT, Paused, _env, check_error,
                      fd_links, stats, trmtop_path, wait_until)

# Modules a session may add on every version: the agent itself (it stays
# loaded between sessions) and tracemalloc's C module.
AGENT_MODULES = {"_trmtop_agent", "_tracemalloc"}

MODES = ("idle", "busy")  # bare.py: hijacked main thread / pending call


def modules(t):
    return set(t.cmd("modules").split())


@pytest.mark.parametrize("mode", MODES)
def test_imports_nothing(python, mode, spawn, trmtop, tmp_path):
    """A target that never imported threading does not have it after
    start, snapshot and stop (3.9+; 3.8 needs it, DESIGN.md), and nothing
    else appears in sys.modules but the agent and _tracemalloc (and gc on
    3.8 and 3.9, whose snapshots pause the GC through it)."""
    t = spawn(python, "bare", args=[mode], pyflags=["-S"])  # no site: no .pth imports
    before = modules(t)
    assert "threading" not in before
    for args in (("start",), ("snapshot", "-o", str(tmp_path / "s.trm")), ("stop",)):
        res = trmtop(args[0], "--pid", t.pid, *args[1:])
        assert res.rc == 0, res
    added = modules(t) - before
    if python.version < (3, 9):
        assert "threading" in added, added
        return  # threading brings its own imports along
    allowed = AGENT_MODULES | ({"gc"} if python.version < (3, 10) else set())
    assert added <= allowed, "trmtop imported %s into the target" % sorted(added - allowed)
    assert "threading" not in added
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.output == b"shape: bare\n" and t.stderr == b""


CYCLES = 15


@pytest.mark.parametrize("mode", MODES)
def test_no_growth_per_session(python, mode, spawn, trmtop):
    """Once the agent is loaded, start/stop cycles leave no object behind:
    sys.getallocatedblocks() in the target grows by less than one block
    per cycle over CYCLES cycles.  (It grew by 5 to 14 per cycle on 3.12+
    while each request of the agent imported _tracemalloc and made its
    method names anew: the type attribute cache keeps the name strings it
    is given, one slot per string object.)

    3.14's PEP 768 remote exec (the busy shape there) does the same in
    CPython itself (PyFile_OpenCodeObject makes a new "open" string per
    run: a block per run for its first few dozen runs, with a bare
    sys.remote_exec of `pass` too), so that case is measured with the
    type attribute cache cleared; the agent's code is the same on every
    path, and the idle shape measures it with the cache as it is."""
    t = spawn(python, "bare", args=[mode], pyflags=["-S"])
    pep768 = mode == "busy" and python.version >= (3, 14)
    blocks = "blocks-uncached" if pep768 else "blocks"

    def cycle():
        for cmd in ("start", "stop"):
            res = trmtop(cmd, "--pid", t.pid)
            assert res.rc == 0, res

    int(t.cmd("blocks"))  # imports gc in the target, before measuring
    cycle()  # loads the agent, once for the life of the process
    cycle()
    b0 = int(t.cmd(blocks))
    for _ in range(CYCLES):
        cycle()
    b1 = int(t.cmd(blocks))
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.output == b"shape: bare\n" and t.stderr == b""
    assert b1 - b0 < CYCLES, "%d blocks more after %d start/stop cycles" % (b1 - b0, CYCLES)


# ---------------------------------------------------------------------------
# Attaches that give up


def maps_lines(pid):
    with open("/proc/%d/maps" % pid) as f:
        return set(f.read().splitlines())


def anon_page(line):
    """(start, end) of a private anonymous rw mapping line, else None."""
    fields = line.split()
    if len(fields) != 5 or fields[1] != "rw-p":
        return None
    start, end = (int(x, 16) for x in fields[0].split("-"))
    return start, end


def syscall_args(pid):
    """(nr, arg0) of the main thread's syscall, or None when running."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            s = f.read().split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if not s or s[0] == "running" or len(s) < 2:
        return None
    return int(s[0]), int(s[1], 16)


def holding(t, fd):
    """Make bare's main thread block in read(fd) holding the GIL."""
    t.send("hold")
    assert t.readline() == "holding"
    wait_until(lambda: syscall_args(t.pid) == (0, fd), PROC_TIMEOUT,
               "the target's main thread to block in read(%d)" % fd)


def spawn_holder(python, spawn):
    r, w = os.pipe()
    try:
        t = spawn(python, "bare", args=["idle", r], pass_fds=[r], pyflags=["-S"])
    finally:
        os.close(r)
    return t, r, w


def trmtop_memfds(pid):
    return {fd: l for fd, l in fd_links(pid).items() if l.startswith("/memfd:trmtop-")}


@pytest.mark.parametrize("loaded", [False, True], ids=["fresh", "agent-loaded"])
def test_given_up_attach_takes_back_its_fds(python, loaded, spawn, trmtop):
    """No thread can run Python (the only one blocks holding the GIL), so
    the attach gives up after --attach-timeout with a pending call queued.
    The target then has exactly the fds it had before, no new trmtop memfd
    in its maps, and one private page more: the queued call's text, which
    names no fd.  When the call runs, the agent (if loaded) unmaps that
    page; without the agent the page stays (DESIGN.md)."""
    t, r, w = spawn_holder(python, spawn)
    try:
        if loaded:
            for cmd in ("start", "stop"):
                res = trmtop(cmd, "--pid", t.pid)
                assert res.rc == 0, res
        holding(t, r)
        fds0, maps0 = fd_links(t.pid), maps_lines(t.pid)
        res = trmtop("start", "--pid", t.pid, "--attach-timeout", "1")
        check_error(res, "no safe point")
        t.check_healthy()
        assert fd_links(t.pid) == fds0, "fds left in the target: %r" % (
            sorted(set(fd_links(t.pid).items()) - set(fds0.items())),)
        maps1 = maps_lines(t.pid)
        assert not maps0 - maps1, sorted(maps0 - maps1)
        new = sorted(maps1 - maps0)
        assert len(new) == 1, new
        page = anon_page(new[0])
        assert page and page[1] - page[0] == os.sysconf("SC_PAGE_SIZE"), new
        os.write(w, b"x")
    finally:
        os.close(w)
    assert t.readline() == "ok"
    assert t.cmd("ping") == "pong"  # the left-behind call has run
    assert fd_links(t.pid) == fds0
    if loaded:
        wait_until(lambda: new[0] not in maps_lines(t.pid), PROC_TIMEOUT,
                   "the agent to unmap the page of the call left behind")
    else:
        assert new[0] in maps_lines(t.pid)
        assert not any("memfd:trmtop" in l for l in maps_lines(t.pid))
    assert stats(t.pid)["tracing"] == "off"
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.stderr == b""


def test_left_behind_call_with_its_fd_numbers_reused(python, spawn, trmtop):
    """A given-up attach closed its fds; the next attach gets the same
    numbers.  When the target can run Python again, the call the first
    attach left behind runs first and must not touch them: the second
    attach's call then connects, and stop leaves the fds as they were."""
    t, r, w = spawn_holder(python, spawn)
    proc = None
    try:
        holding(t, r)
        fds0 = fd_links(t.pid)
        res = trmtop("start", "--pid", t.pid, "--attach-timeout", "1")
        check_error(res, "no safe point")
        assert fd_links(t.pid) == fds0
        # the numbers the first attach used: the lowest free ones
        lowest = [n for n in range(max(fds0) + 6) if n not in fds0][:5]
        proc = subprocess.Popen([trmtop_path(), "start", "--pid", str(t.pid),
                                 "--attach-timeout", "60"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        wait_until(lambda: len(set(fd_links(t.pid)) - set(fds0)) == 5 or proc.poll() is not None,
                   TRMTOP_TIMEOUT, "the second attach's fds in the target")
        assert sorted(set(fd_links(t.pid)) - set(fds0)) == lowest
        assert len(trmtop_memfds(t.pid)) == 1
        os.write(w, b"x")
        out, err = proc.communicate(timeout=TRMTOP_TIMEOUT)
    finally:
        os.close(w)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (out, err)
    assert t.readline() == "ok"
    assert stats(t.pid)["tracing"] == "trmtop"
    res = trmtop("stop", "--pid", t.pid)
    assert res.rc == 0, res
    wait_until(lambda: fd_links(t.pid) == fds0, PROC_TIMEOUT,
               "the target's fds to be as before: %r" % (fds0,))
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.stderr == b""


SEALS = 0x1 | 0x2 | 0x4 | 0x8  # F_SEAL_SEAL, SHRINK, GROW, WRITE


def test_memfds_are_sealed(python, spawn, tmp_path):
    """Whoever can open the target's fds cannot swap the agent (or, on
    3.14, the PEP 768 script) before the bootstrap loads it: trmtop seals
    its memfds once written.  Checked while an attach is held at the
    stage where they are made (`remote`)."""
    t = spawn(python, "bare", args=["busy"], pyflags=["-S"])
    p = Paused(["start", "--pid", t.pid], "remote", str(tmp_path))
    assert p.paused, p.result
    try:
        memfds = trmtop_memfds(t.pid)
        kinds = sorted("script" if "script" in l else "agent" for l in memfds.values())
        assert kinds == (["agent", "script"] if python.version >= (3, 14) else ["agent"]), memfds
        for fd in memfds:
            path = "/proc/%d/fd/%d" % (t.pid, fd)
            rfd = os.open(path, os.O_RDONLY)
            try:
                assert fcntl.fcntl(rfd, fcntl.F_GET_SEALS) == SEALS, memfds[fd]
            finally:
                os.close(rfd)
            wfd = os.open(path, os.O_WRONLY)
            try:
                with pytest.raises(PermissionError):
                    os.write(wfd, b"\x7fELF")
            finally:
                os.close(wfd)
    finally:
        p.kill(signal.SIGKILL)
    t.check_healthy()
    t.kill()


def test_give_up_while_a_bootstrap_runs(python, spawn, trmtop):
    """The bootstrap has started when the attach gives up: an audit hook of
    the target holds it inside its exec(), holding the GIL.  trmtop must
    take nothing back under it (the main thread is inside a
    PyRun_SimpleString called from the eval loop, or, on 3.14, the PEP 768
    run has been taken); the bootstrap, once it goes on, loads the agent,
    finds trmtop gone and closes what it was given."""
    r, w = os.pipe()
    try:
        t = spawn(python, "bare", args=["busy", r], pass_fds=[r], pyflags=["-S"])
    finally:
        os.close(r)
    try:
        fds0 = fd_links(t.pid)
        assert t.cmd("hook-exec") == "ok"
        res = trmtop("start", "--pid", t.pid, "--attach-timeout", "1", env={"TRMTOP_TRACE": "1"})
        check_error(res)
        if python.version < (3, 14):
            assert "reclaim: a bootstrap has run or runs" in res.err, res
        assert len(trmtop_memfds(t.pid)) == (2 if python.version >= (3, 14) else 1)  # left to it
        os.write(w, b"x")
    finally:
        os.close(w)
    wait_until(lambda: fd_links(t.pid) == fds0, PROC_TIMEOUT,
               "the bootstrap to close what it was given: %r" % (fds0,))
    assert t.cmd("ping") == "pong"
    assert "_trmtop_agent" in modules(t)
    assert stats(t.pid)["tracing"] == "off"
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.stderr == b""
