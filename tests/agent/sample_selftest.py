"""sample_selftest.py AGENT_SO: the agent's sampler in this interpreter.

Loads the agent as agent_selftest.py does (its Session plays trmtop's side
of the pipes) and checks the sampler against tracemalloc in the same
process: accuracy, the allocators restored field for field, start/stop
while threads come and go, fork, the memory cap, sampling every
allocation (re-entrancy).  TAP on stdout; exit 0, 1 on failure, 77 when
this interpreter cannot run it.  TRMTOP_SAMPLE_SEED replays a run (the
accuracy test sets it unless it is set already).
"""
import os
import struct
import sys
import threading
import tracemalloc
import warnings
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_selftest as at  # noqa: E402
from agent_selftest import (Session, check, START, STATS_REQ,  # noqa: E402
                            STATS, STATE, OFF, APPLICATION)

SAMPLE = 2
SAMPLED = 1   # SNAPSHOT_REQ frame flag
CAPPED = 1
NO_FRAME = "<no Python frame>"
OPEN = []   # sessions of the running test, detached if it fails


def session():
    s = Session()
    OPEN.append(s)
    s.bootstrap(load="_trmtop_agent" not in sys.modules)
    s.hello()
    return s


def start_sample(s, nframe, size, cap=0, flags=0):
    """START with WIRE_START_SAMPLE: (tracing, limit, sample_size)."""
    s.send(START, struct.pack("<IIQQ", nframe, flags | SAMPLE, size, cap))
    p = s.expect(STATE)
    tracing, limit = struct.unpack_from("<B3xI", p)
    size = struct.unpack_from("<Q", p, 8)[0] if len(p) >= 16 else 0
    return tracing, limit, size


def stop(s):
    s.send(at.STOP)
    p = s.expect(STATE)
    check(len(p) == 8, "STATE after STOP still says sampling")
    return struct.unpack_from("<B3xI", p)


def stats(s):
    s.send(STATS_REQ)
    p = s.expect(STATS)
    d = {}
    if len(p) >= 80:
        d["size"], d["samples"], d["memory"], d["flags"] = \
            struct.unpack_from("<QQQI", p, 48)
    else:
        d = {"size": 0, "samples": 0, "memory": 0, "flags": 0}
    d["tracing"] = p[44]
    return d


def allocators():
    """get(domain), at(address): agent_selftest.raw_allocator's."""
    return at.raw_allocator()


WORKLOAD = """
def l10(): return [bytes(1000 + i % 500) for i in range(8000)]
def l17(): return [bytearray(200 + (i * 37) % 3000) for i in range(10000)]
def l22(): return ['x' * (250 + i % 100) for i in range(65000)]
def l30(): return [bytes(300000 + i) for i in range(100)]
def l40(): return {i: b'y' * (400 + i % 800) for i in range(50000)}
def churn(n):
    for i in range(n):
        t = [bytes(i % 3000), str(i) * 5]
    return None
def build():
    keep = []
    for f in (l10, churn, l17, churn, l22, churn, l30, churn, l40, churn):
        keep.append(f() if f is not churn else f(30000))
    return keep
"""

LINES = {2: "l10", 3: "l17", 4: "l22", 5: "l30", 6: "l40"}


def by_line(traces, path):
    """{lineno: bytes} of the innermost frames in file path."""
    out = defaultdict(int)
    for t in traces:
        frames = t[2][0]
        if frames and frames[0][0] == path:
            out[frames[0][1]] += t[1]
    return out


def test_accuracy():
    """tracemalloc on (the application's, 1 frame), the sampler chained
    on top at 64 KiB: every line within 25% of the exact figure, and
    ranked the same."""
    os.environ.setdefault("TRMTOP_SAMPLE_SEED", "20260101")
    tracemalloc.start(1)
    try:
        s = Session()
        OPEN.append(s)
        s.bootstrap(load="_trmtop_agent" not in sys.modules)
        check(s.hello() == (APPLICATION, 1), "HELLO")
        check(start_sample(s, 1, 64 << 10) == (APPLICATION, 1, 64 << 10),
              "START SAMPLE")
        wl, path = load(WORKLOAD)
        keep = wl.build()
        exact = by_line(at.truth_traces(
            __import__("_tracemalloc")._get_traces()), path)
        head, traces, end, _ = s.snapshot(flags=SAMPLED)
        check(head["sample_size"] == 64 << 10, "SNAP_HEAD sample_size %r"
              % head["sample_size"])
        check(head["tracing"] == APPLICATION, "SNAP_HEAD tracing")
        est = by_line(traces, path)
        st = stats(s)
        check(st["size"] == 64 << 10 and st["samples"] > 500 and
              st["memory"] > 0 and not st["flags"], "STATS %r" % st)
        report = ", ".join("%s %.1f/%.1f MB" % (LINES[k], est.get(k, 0) / 1e6,
                                                exact.get(k, 0) / 1e6)
                           for k in sorted(LINES))
        for k in LINES:
            e, x = est.get(k, 0), exact.get(k, 0)
            check(x > 9e6, "%s: exact %d" % (LINES[k], x))
            check(abs(e - x) <= 0.25 * x, "%s off by %.0f%%: %s (seed %s)"
                  % (LINES[k], 100.0 * (e - x) / x, report,
                     os.environ["TRMTOP_SAMPLE_SEED"]))
        print("# estimated/exact: %s" % report)
        rank = lambda d: sorted(LINES, key=lambda k: -d.get(k, 0))
        check(rank(est) == rank(exact), "ranking: %s" % report)
        del keep
        check(stop(s) == (APPLICATION, 1), "STOP")
        check(tracemalloc.is_tracing(), "STOP stopped the application's")
        s.detach()
    finally:
        tracemalloc.stop()


LOADED = [0]


def load(text):
    """text as a new module (agent_selftest.load_workload): (module, path)."""
    LOADED[0] += 1
    return at.load_workload("trm_sample_wl_%d_%d" % (os.getpid(), LOADED[0]),
                            text)


def test_restore():
    """STOP puts every domain's allocator back field for field, with and
    without tracemalloc under the sampler; while sampling, each domain's
    context is a copy of what was there."""
    get, at_ = allocators()
    if get is None:
        return
    s = session()
    for app_tracing in (False, True, False):
        if app_tracing:
            tracemalloc.start(1)
        orig = [get(d) for d in range(3)]
        check(start_sample(s, 4, 4096)[2] == 4096, "START SAMPLE")
        for d in range(3):
            cur = get(d)
            check(cur[1:] != orig[d][1:], "domain %d not hooked" % d)
            check(cur[0] and at_(cur[0]) == orig[d],
                  "domain %d: the context is not a copy of the original" % d)
        junk = [bytes(100) for _ in range(20000)]
        if app_tracing:
            # without the flag a snapshot is tracemalloc's, as before
            head, traces, _, _ = s.snapshot()
            check(head["sample_size"] == 0 and head["tracing"] == APPLICATION
                  and sum(t[1] for t in traces) >= 20000 * 100,
                  "unflagged snapshot while sampling: %r" % head)
            del traces
        threads = [threading.Thread(target=lambda: bytes(100))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        del junk
        stop(s)
        for d in range(3):
            check(get(d) == orig[d], "domain %d not restored: %r vs %r"
                  % (d, get(d), orig[d]))
        if app_tracing:
            tracemalloc.stop()
    # trmtop's own tracing started over the sampler (the raw-allocator
    # guard and tracemalloc on top of its hooks): one STOP ends both and
    # the hooks come off once those have gone.  tracemalloc's own table
    # allocations (raw domain, its lock held) are sampled too, and must
    # not create objects: on 3.11+ the walk of a frame not yet
    # materialised did, and deadlocked on tracemalloc's lock (each new
    # function below: a new frame, new tracebacks for tracemalloc)
    orig = [get(d) for d in range(3)]
    start_sample(s, 4, 128)
    check(s.start(1) == (at.TRMTOP, 1), "START tracemalloc over the sampler")
    check(tracemalloc.is_tracing(), "tracemalloc not started")
    ns = {}
    exec(compile("".join("def f%d(): return bytes(%d)\n" % (i, i)
                         for i in range(3000)), "<fresh>", "exec"), ns)
    junk = [ns["f%d" % i]() for i in range(3000)]
    junk += [bytes(100) for _ in range(20000)]
    check(stats(s)["samples"] > 0, "sampler under tracemalloc")
    del junk
    check(stop(s) == (OFF, 1), "STOP both")
    for d in range(3):
        check(get(d) == orig[d], "domain %d not restored after both: %r vs %r"
              % (d, get(d), orig[d]))
    # the sampler left under the application's tracemalloc, then the
    # application stops it: a later start and stop still restore
    orig = [get(d) for d in range(3)]
    start_sample(s, 4, 4096)
    tracemalloc.start(1)
    stop(s)
    tracemalloc.stop()
    start_sample(s, 4, 4096)
    junk = [bytes(100) for _ in range(20000)]
    check(stats(s)["samples"] > 0, "sampler after tracemalloc went")
    del junk
    stop(s)
    for d in range(3):
        check(get(d) == orig[d], "domain %d not restored at last" % d)
    # the application's tracemalloc under the sampler stops: it puts back
    # what it found, dropping the hooks; the next start installs anew
    tracemalloc.start(1)
    start_sample(s, 4, 4096)
    tracemalloc.stop()
    check([get(d) for d in range(3)] == orig, "tracemalloc.stop() restores")
    stop(s)
    start_sample(s, 4, 4096)
    check(all(get(d) != orig[d] for d in range(3)), "not installed anew")
    junk = [bytes(100) for _ in range(20000)]
    check(stats(s)["samples"] > 0, "sampler after its hooks were dropped")
    del junk
    stop(s)
    check([get(d) for d in range(3)] == orig, "not restored after reinstall")
    s.detach()


def test_thread_churn():
    """Start and stop the sampler while threads come and go and others
    allocate without pause (their raw frees run without the GIL)."""
    get, _ = allocators()
    orig = [get(d) for d in range(3)] if get else None
    s = session()
    done = threading.Event()

    def spinner():
        while not done.is_set():
            x = [bytearray(i % 700) for i in range(200)]
            del x

    def spawner():
        while not done.is_set():
            ts = [threading.Thread(target=lambda: bytes(64)) for _ in range(4)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()

    workers = [threading.Thread(target=spinner) for _ in range(2)]
    workers.append(threading.Thread(target=spawner))
    for w in workers:
        w.start()
    try:
        for i in range(40):
            start_sample(s, 8, 512 if i % 2 else 65536)
            stats(s)
            if i % 5 == 0:
                s.snapshot(flags=SAMPLED)
            stop(s)
    finally:
        done.set()
        for w in workers:
            w.join()
    if orig:
        check([get(d) for d in range(3)] == orig,
              "allocators not restored after the churn")
    s.detach()


def test_fork():
    """A child forked while sampling allocates, frees and exits 0; its
    hooks work (a session in the child sees the sampler running)."""
    s = session()
    start_sample(s, 4, 4096)
    keep = [bytes(500) for _ in range(2000)]

    def child():
        del keep[:]
        junk = [bytearray(i % 2000) for i in range(50000)]  # held: sampled
        c = Session()
        c.start_direct()
        c.hello()
        st = stats(c)
        check(st["size"] == 4096 and st["samples"] > 0, "child stats %r" % st)
        stop(c)
        c.detach()
        del junk
    at.in_child(child, "fork child failed")
    st = stats(s)
    check(st["size"] == 4096 and st["samples"] > 0, "parent after fork %r" % st)
    del keep
    stop(s)
    s.detach()


def test_cap():
    """The sampler's memory stays under its cap and STATS says it was
    reached."""
    cap = (1 << 20) + (256 << 10)   # the 1 MiB filter + 256 KiB
    s = session()
    start_sample(s, 16, 64, cap)
    keep = [bytes(100 + i % 50) for i in range(60000)]
    st = stats(s)
    check(st["flags"] & CAPPED, "cap not reported: %r" % st)
    check(st["memory"] <= cap, "memory %d over the cap %d" % (st["memory"], cap))
    check(st["samples"] > 1000, "samples %d" % st["samples"])
    head, traces, _, _ = s.snapshot(flags=SAMPLED)
    check(head["sample_size"] == 64 and traces, "snapshot at the cap")
    s.send(at.SNAPSHOT_REQ)   # tracemalloc's: it is off
    check(struct.unpack_from("<I", s.expect(at.ERROR))[0] == at.ERR_NOT_TRACING,
          "unflagged snapshot while only sampling")
    del keep
    stop(s)
    check(stats(s)["size"] == 0, "STATS after STOP")
    s.detach()


SUBINTERP_CODE = """
import threading
def f():
    exec(compile("x = [str(i) * 10 for i in range(20000)]",
                 "/tmp/trmtop-subinterpreter-file.py", "exec"), {})
t = threading.Thread(target=f)
t.start()
t.join()
"""


def test_subinterpreter():
    """A thread started in a subinterpreter allocates while the sampler
    samples every 64 bytes (on 3.12+ it runs under the subinterpreter's
    own GIL and obmalloc): its samples count under <no Python frame>, no
    name of the subinterpreter's is kept, and a sampled snapshot and STOP
    after the subinterpreter is gone leave the process running (they
    aborted it: a file name freed through the main interpreter's
    allocator).  In a child, so that a crash is a failure, not the end of
    the run."""
    try:
        import _interpreters as interp
        create = interp.create
    except ImportError:
        try:
            import _xxsubinterpreters as interp
        except ImportError:
            return  # no subinterpreter module (3.8-3.11 build without it)
        if sys.version_info >= (3, 12):
            create = lambda: interp.create(isolated=True)  # its own GIL
        elif sys.version_info >= (3, 9):
            create = lambda: interp.create(isolated=False)  # threads allowed
        else:
            create = interp.create

    def child():
        s = Session()
        s.start_direct()
        s.hello()
        start_sample(s, 10, 64)
        iid = create()
        interp.run_string(iid, SUBINTERP_CODE)
        interp.destroy(iid)
        head, traces, _, _ = s.snapshot(flags=SAMPLED)
        names = {f[0] for t in traces for f in t[2][0]}
        check("/tmp/trmtop-subinterpreter-file.py" not in names,
              "a subinterpreter's file name was kept: %r" % sorted(names)[:5])
        stop(s)
        s.detach()
    at.in_child(child, "subinterpreter child")


def test_every_allocation():
    """SIZE 1: every allocation is sampled, so the frame walk itself
    allocates while recording (frame objects on 3.11+) and must pass
    through; the estimate of a line is then its exact size (weights of
    blocks of a few hundred bytes are 1), and a raw allocation made
    without the GIL counts under <no Python frame>."""
    s = session()
    check(start_sample(s, 32, 1)[2] == 1, "START")
    wl, path = load("def deep(k):\n"
                    "    return deep(k - 1) if k else [bytes(300) for _ in range(2000)]\n")
    keep = wl.deep(40)
    raw = None
    try:
        import ctypes
        lib = ctypes.CDLL(None)            # calls release the GIL
        lib.PyMem_RawMalloc.restype = ctypes.c_void_p
        lib.PyMem_RawMalloc.argtypes = (ctypes.c_size_t,)
        lib.PyMem_RawFree.argtypes = (ctypes.c_void_p,)
        raw = lib.PyMem_RawMalloc(3 << 20)
    except (ImportError, AttributeError, OSError):
        lib = None
    head, traces, _, _ = s.snapshot(flags=SAMPLED)
    lines = by_line(traces, path)
    # the 2000 bytes objects, plus the list and (3.8) the frames the line
    # also allocates
    want = 2000 * sys.getsizeof(bytes(300))
    check(want <= lines.get(2, 0) <= 1.1 * want,
          "line 2: %d vs %d" % (lines.get(2, 0), want))
    depth = max(len(t[2][0]) for t in traces if t[2][0][0][0] == path)
    check(depth == 32, "traceback depth %d" % depth)
    if raw:
        nf = sum(t[1] for t in traces if t[2][0][0][0] == NO_FRAME)
        check(nf >= 3 << 20, "<no Python frame>: %d" % nf)
        lib.PyMem_RawFree(raw)
    del keep
    stop(s)
    s.detach()


STACKS = """import threading, zlib
def z(): return [zlib.compressobj(9) for _ in range(40)]
def threads(ev):
    ts = [threading.Thread(target=ev.wait) for _ in range(8)]
    for t in ts: t.start()
    return ts
def gen(n):
    for i in range(n):
        yield bytes(1000 + i % 7)
def use_gen(): return list(gen(3000))
async def inner(n): return [bytes(1200) for _ in range(n)]
async def outer(n): return await inner(n)
def use_coro():
    c = outer(3000)
    try:
        c.send(None)
    except StopIteration as e:
        return e.value
def use_sorted():
    keep = []
    sorted(range(3000), key=lambda i: keep.append(bytes(1400)) or i)
    return keep
def deep(k): return deep(k - 1) if k else [bytes(1600) for _ in range(3000)]
"""


def by_traceback(traces, path):
    """{frames: bytes} of the traces with a frame in file path."""
    out = defaultdict(int)
    for t in traces:
        frames = tuple(tuple(f) for f in t[2][0])
        if any(f[0] == path for f in frames):
            out[frames] += t[1]
    return out


def test_stacks():
    """SIZE 1 (every allocation sampled, so an estimate is the exact size
    but for blocks of a few bytes), 16 frames, over tracemalloc with 16
    frames: each traceback through the workload file holding 8 KiB or
    more, tracemalloc's and the sampler's, is the other's too, bytes
    within 5%.  The workload allocates in the raw domain with the GIL
    held (zlib's deflate state; thread states, made under the runtime's
    HEAD_LOCK), in a generator, a coroutine, a key function called by
    sorted() (3.12+: a C-stack frame in between) and 200 frames deep."""
    os.environ.setdefault("TRMTOP_SAMPLE_SEED", "20260102")
    tracemalloc.start(16)
    ev = threading.Event()
    ts = []
    try:
        s = session()
        check(start_sample(s, 16, 1)[2] == 1, "START")
        wl, path = load(STACKS)
        keep = [wl.z()]
        ts = wl.threads(ev)
        keep += [wl.use_gen(), wl.use_coro(), wl.use_sorted(), wl.deep(200)]
        exact = by_traceback(at.truth_traces(
            __import__("_tracemalloc")._get_traces()), path)
        _, traces, _, _ = s.snapshot(flags=SAMPLED)
        est = by_traceback(traces, path)
        nf = sum(t[1] for t in traces if t[2][0][0][0] == NO_FRAME)
        lines = defaultdict(int)
        for tb, b in est.items():
            lines[tb[0][1] if tb[0][0] == path else 0] += b
        print("# %d tracebacks (tracemalloc %d); <no Python frame> %d bytes;"
              " by line %s" % (len(est), len(exact), nf, dict(lines)))
        for tb, b in sorted(exact.items(), key=lambda kv: -kv[1]):
            if b >= 8192:
                check(abs(est.get(tb, 0) - b) <= 0.05 * b,
                      "tracemalloc's %r: %d bytes, sampled %d"
                      % (tb, b, est.get(tb, 0)))
        for tb, b in est.items():
            if b >= 8192:
                check(tb in exact, "sampled %r (%d bytes) unknown to "
                      "tracemalloc" % (tb, b))
        # and what the workload says, not only tracemalloc (the
        # tracebacks of the allocations, not of the definitions)
        want = {2: 40 * (128 << 10), 9: 3000 * 1000, 11: 3000 * 1200,
                21: 3000 * 1400, 23: 3000 * 1600}
        for ln, w in want.items():
            check(lines.get(ln, 0) >= w, "line %d: %d bytes sampled, %d "
                  "allocated" % (ln, lines.get(ln, 0), w))
        g = [tb for tb in est if tb[0] == (path, 9)
             and est[tb] >= 8192]
        check(g and all(tb[1] == (path, 10) for tb in g),
              "generator: %r" % g[:2])
        c = [tb for tb in est if tb[0] == (path, 11)
             and est[tb] >= 8192]
        check(c and all((path, 12) in tb and (path, 16) in tb for tb in c),
              "coroutine: %r" % c[:2])
        k = [tb for tb in est if tb[0] == (path, 21)
             and est[tb] >= 8192]
        check(k and all(tb[1] == (path, 21) and
                        sum(f[0] == path for f in tb) == 2 for tb in k),
              "sorted key: %r" % k[:2])
        d = [tb for tb in est if tb[0] == (path, 23)
             and est[tb] >= 8192]
        check(d and all(tb == ((path, 23),) * 16 for tb in d),
              "200 deep: %r" % d[:2])
        # a raw block of a thread state is attributed through threading
        # to the line that started the thread
        t5 = [tb for tb in est if (path, 5) in tb]
        check(t5, "no traceback through t.start()")
        del keep
        stop(s)
        s.detach()
    finally:
        ev.set()
        for t in ts:
            t.join()
        tracemalloc.stop()


def exit_child(size):
    """Mode --exit-child SIZE: exit with the sampler on (every allocation
    of the finalization sampled at SIZE 1), threads still allocating."""
    s = Session()
    s.bootstrap()
    s.hello()
    start_sample(s, 16, size)
    keep = [bytes(i % 900) for i in range(20000)]
    for _ in range(2):
        threading.Thread(target=lambda: [bytes(50) for _ in range(100000)],
                         daemon=True).start()
    sys.stdout.write("ok\n")
    sys.stdout.flush()
    return keep


def test_exit_sampling():
    """The interpreter exits (finalizes) while the sampler runs: exit 0,
    nothing printed."""
    import subprocess
    for size in ("1", "4096"):
        p = subprocess.run([sys.executable, __file__, "--exit-child", size,
                            at.AGENT_SO], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        check(p.returncode == 0 and p.stdout == b"ok\n" and p.stderr == b"",
              "exit while sampling at %s: rc=%d out=%r err=%r"
              % (size, p.returncode, p.stdout, p.stderr[-2000:]))


# no comprehension: on 3.8-3.10 its frame object, cached by its code
# object, would stay in use at the line
TABLE_SRC = ("def a(): return list(map(bytes, [1000] * 2000))\n"
             "def b(): return list(map(bytes, [3000] * 1000))\n"
             "def c(): return list(map(bytes, [1000] * 2000))\n"
             "def d(): return list(map(bytes, [2000] * 1000))\n")
TABLE_FILE = "<table-test>"


def table_reply(s, table):
    """SNAPSHOT_REQ with CHANGED: apply the reply to table ({traceback
    id: (size, count, alloc_size, alloc_count)}) as trmtop does, check it
    adds up, and return (kind, {traceback tuple: figures} of the rows
    sent, the connection's tracebacks by id)."""
    head, traces, end, _ = s.snapshot(flags=SAMPLED | at.ESTIMATES |
                                      at.CHANGED)
    kind = head["table"]
    check(kind in (at.TABLE_FULL, at.TABLE_DELTA), "table kind %r" % kind)
    if kind == at.TABLE_FULL:
        table.clear()
    sent = {}
    for dom, size, tb, est, tid in traces:
        check(dom == 0, "domain %d" % dom)
        check(tb not in sent, "a traceback sent twice: %r" % (tb,))
        sent[tb] = (size,) + est
        table[tid] = (size,) + est
    check(len(table) == head["table_rows"], "%d rows after the reply, "
          "SNAP_HEAD says %d" % (len(table), head["table_rows"]))
    check(sum(v[0] for v in table.values()) == head["current"],
          "in use %d, SNAP_HEAD says %d"
          % (sum(v[0] for v in table.values()), head["current"]))
    return kind, sent


def mine(rows):
    """The rows of TABLE_FILE's lines, by line."""
    return {tb[0][0][1]: v for tb, v in rows.items()
            if tb[0] and tb[0][0][0] == TABLE_FILE}


def test_table():
    """Table replies (wire minor 3): the first is the whole table, the
    next only the rows that changed (a row whose blocks were all freed
    included), one with nothing changed in the workload sends none of
    its rows; the table applied equals a full reply; a restart of the
    sampler and a new session send everything again."""
    ns = {}
    exec(compile(TABLE_SRC, TABLE_FILE, "exec"), ns)
    s = session()
    check(start_sample(s, 1, 4096)[2] == 4096, "START SAMPLE")
    table = {}
    keep = [ns["a"](), ns["b"](), ns["c"]()]
    kind, sent = table_reply(s, table)
    check(kind == at.TABLE_FULL, "first reply not a full one")
    first = mine(sent)
    check(sorted(first) == [1, 2, 3], "full reply's lines %r" % first)
    check(all(v[0] > 0 for v in first.values()), "in use %r" % first)
    # c's blocks go, d's come: only those two of ours change
    del keep[2]
    keep.append(ns["d"]())
    kind, sent = table_reply(s, table)
    check(kind == at.TABLE_DELTA, "second reply not a delta")
    second = mine(sent)
    check(sorted(second) == [3, 4], "delta's lines %r" % second)
    check(second[3][0] == 0 and second[3][1] == 0 and
          second[3][2] == first[3][2], "c's row after its frees: %r vs %r"
          % (second[3], first[3]))
    check(len(sent) < len(table), "the delta sent %d rows of %d"
          % (len(sent), len(table)))
    # nothing of ours changed: none of our rows
    kind, sent = table_reply(s, table)
    check(kind == at.TABLE_DELTA and not mine(sent),
          "third reply: %r %r" % (kind, mine(sent)))
    # the table as applied equals what a reply of every row says now
    _, traces, _, _ = s.snapshot(flags=SAMPLED | at.ESTIMATES)
    whole = defaultdict(lambda: (0, 0, 0, 0))
    for dom, size, tb, est, tid in traces:
        if tb[0] and tb[0][0][0] == TABLE_FILE:
            whole[tb[0][0][1]] = tuple(
                x + y for x, y in zip(whole[tb[0][0][1]], (size,) + est))
    ours = {k: v for k, v in mine({s.tables["tracebacks"][t]: v
                                   for t, v in table.items()}).items()}
    check(ours == dict(whole), "applied table %r vs a full reply %r"
          % (ours, dict(whole)))
    # a restart of the sampler: all rows are new
    stop(s)
    start_sample(s, 1, 4096)
    keep.append(ns["a"]())
    kind, sent = table_reply(s, table)
    check(kind == at.TABLE_FULL and 1 in mine(sent),
          "after a restart: %r %r" % (kind, mine(sent)))
    s.detach()
    # a new session (the sampler kept running: KEEP) starts from a full one
    s = session()
    start_sample(s, 1, 4096, flags=at.KEEP)
    keep.append(ns["b"]())
    s.detach()
    s = session()
    table = {}
    kind, sent = table_reply(s, table)
    check(kind == at.TABLE_FULL and sorted(mine(sent)) == [2],
          "new session: %r %r" % (kind, mine(sent)))
    kind, sent = table_reply(s, table)
    check(kind == at.TABLE_DELTA and not mine(sent),
          "new session's second: %r %r" % (kind, mine(sent)))
    stop(s)
    s.detach()
    del keep


def fresh(test):
    """test, with OPEN holding only its own sessions."""
    def run():
        del OPEN[:]
        test()
    run.__name__ = test.__name__
    return run


TESTS = [fresh(t) for t in (test_accuracy, test_restore, test_thread_churn,
                            test_fork, test_cap, test_subinterpreter,
                            test_every_allocation,
                            test_stacks, test_exit_sampling, test_table)]


def main(argv):
    if len(argv) == 4 and argv[1] == "--exit-child":
        at.AGENT_SO = argv[3]
        globals()["_keep"] = exit_child(int(argv[2]))
        return 0
    if len(argv) != 2:
        sys.stderr.write("usage: sample_selftest.py AGENT_SO\n")
        return 2
    if sys.version_info < (3, 8):
        print("1..0 # SKIP needs Python 3.8+")
        return 77
    at.AGENT_SO = argv[1]
    return at.run_tap(TESTS, detach_open)


def detach_open():
    """After a failure: detach what the test left open."""
    for s in OPEN:
        try:
            s.detach()
        except Exception:
            pass
    del OPEN[:]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
