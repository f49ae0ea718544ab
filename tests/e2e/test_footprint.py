"""What trmtop leaves in a target: modules, heap blocks, fds, mappings,
after sessions and after attaches that gave up (DESIGN.md, "What the
target keeps")."""

import os

import pytest

from conftest import EXIT_CODE

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
