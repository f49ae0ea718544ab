"""agent_selftest.py AGENT_SO: exercise _trmtop_agent in this interpreter.

Loads the agent the way trmtop's bootstrap does (from a memfd, through
_imp.create_dynamic), then plays trmtop's side of the pipe protocol from
Python.  Works on CPython 3.8+.  Exit 0 on success, 1 with a message on
failure, 77 when this interpreter cannot run it.
"""
import os
import select
import struct
import subprocess
import sys
import gc
import tempfile
import threading
import tracemalloc
import warnings
from collections import Counter

import _tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import leb128  # noqa: E402  (tests/lib)

HDR = struct.Struct("<IHH")
PROTO = 0x00010003
HELLO, STATS_REQ, STATS, START, STOP, STATE, DETACH, ERROR = range(1, 9)
(SNAPSHOT_REQ, SNAP_HEAD, SNAP_STRINGS, SNAP_FRAMES, SNAP_TRACEBACKS,
 SNAP_TRACES, SNAP_END) = range(9, 16)
SNAP_HEAD_FMT = struct.Struct("<QQQQQIIIIIIIIB3x")
SNAP_END_FMT = struct.Struct("<QQIII4xQQ")
OFF, TRMTOP, APPLICATION = 0, 1, 2
KEEP = 1
SAMPLED, ESTIMATES, CHANGED = 1, 2, 4   # SNAPSHOT_REQ frame flags
TABLE_FULL, TABLE_DELTA = 1, 2          # SNAP_HEAD table
ERR_UNKNOWN, ERR_PYTHON, ERR_BUSY, ERR_VERSION, ERR_NOT_TRACING = 1, 2, 3, 4, 5
TIMEOUT = 20.0

# The bootstrap trmtop runs in the target (PyRun_SimpleString, GIL held),
# with M, TOKEN, CTL, DATA, CTL_INO, DATA_INO substituted.  It closes the
# memfd M only when M still is trmtop's memfd (the number may have been
# reused by the application), also when the agent was already loaded.
BOOTSTRAP = (
    "exec(\"try:\\n import sys,posix\\n m=sys.modules.get('_trmtop_agent')\\n"
    " try:\\n  ok=posix.readlink('/proc/self/fd/{M}')=='/memfd:trmtop-{TOKEN} (deleted)'\\n"
    " except OSError:\\n  ok=False\\n"
    " if ok:\\n"
    "  if m is None:\\n"
    "   import _imp\\n"
    "   m=_imp.create_dynamic(type('s',(),{{'name':'_trmtop_agent',"
    "'origin':'/proc/self/fd/{M}'}}))\\n"
    "   sys.modules['_trmtop_agent']=m\\n"
    "  posix.close({M})\\n"
    " if m is not None:\\n"
    "  m.start({CTL},{DATA},{CTL_INO},{DATA_INO},{TOKEN})\\n"
    "except BaseException:\\n pass\", {{}})"
)

AGENT_SO = None


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def fd_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def fd_is(fd, ino):
    """fd is open on the pipe with inode ino.  The agent's pipe ends are
    fds of this very process, whose numbers another thread may take again
    as soon as the agent has closed them: a number alone proves nothing."""
    try:
        return os.fstat(fd).st_ino == ino
    except OSError:
        return False


def fd_what(fd):
    try:
        return os.readlink("/proc/self/fd/%d" % fd)
    except OSError as e:
        return "closed (%s)" % e.strerror


def run_bootstrap(text):
    """Run text as trmtop does: PyRun_SimpleString when ctypes has it."""
    try:
        import ctypes
        rc = ctypes.pythonapi.PyRun_SimpleString(text.encode())
        check(rc == 0, "bootstrap returned %d" % rc)
    except ImportError:
        exec(compile(text, "<bootstrap>", "exec"), {})


class Session:
    """trmtop's side of one connection: its ends of the two pipes."""

    token_seq = 1000

    def __init__(self, ino_ctl=None):
        Session.token_seq += 1
        self.token = (0xA5A5 << 48) | (os.getpid() << 16) | Session.token_seq
        self.ctl_r, self.ctl_w = os.pipe2(os.O_CLOEXEC)     # trmtop -> agent
        self.data_r, self.data_w = os.pipe2(os.O_CLOEXEC)   # agent -> trmtop
        self.real_ctl_ino = os.fstat(self.ctl_r).st_ino
        self.ctl_ino = self.real_ctl_ino if ino_ctl is None else ino_ctl
        self.data_ino = os.fstat(self.data_w).st_ino
        self.buf = b""
        self.tables = {"strings": [], "frames": [], "tracebacks": []}

    def bootstrap(self, load=True):
        """Write the agent into a memfd (unless loaded) and run the bootstrap."""
        m = os.memfd_create("trmtop-%d" % self.token, 0)
        if load:
            with open(AGENT_SO, "rb") as f:
                os.write(m, f.read())
        run_bootstrap(self.text(m))
        check(not fd_open(m), "bootstrap left the memfd open")

    def text(self, m):
        return BOOTSTRAP.format(M=m, TOKEN=self.token, CTL=self.ctl_r,
                                DATA=self.data_w, CTL_INO=self.ctl_ino,
                                DATA_INO=self.data_ino)

    def start_direct(self):
        sys.modules["_trmtop_agent"].start(self.ctl_r, self.data_w,
                                          self.ctl_ino, self.data_ino,
                                          self.token)

    def send(self, typ, payload=b"", flags=0):
        os.write(self.ctl_w, HDR.pack(len(payload), typ, flags) + payload)

    def _fill(self, n, timeout):
        while len(self.buf) < n:
            r, _, _ = select.select([self.data_r], [], [], timeout)
            check(r, "timed out waiting for the agent")
            chunk = os.read(self.data_r, 65536)
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv(self, timeout=TIMEOUT):
        """Next (type, payload), or None at EOF."""
        if not self._fill(8, timeout):
            check(not self.buf, "EOF inside a frame header")
            return None
        plen, typ, _flags = HDR.unpack(self.buf[:8])
        check(self._fill(8 + plen, timeout), "EOF inside a frame")
        payload = self.buf[8:8 + plen]
        self.buf = self.buf[8 + plen:]
        return typ, payload

    def expect(self, typ):
        msg = self.recv()
        check(msg is not None, "EOF, expected type %d" % typ)
        if msg[0] == ERROR and typ != ERROR:
            code, = struct.unpack_from("<I", msg[1])
            raise Fail("agent ERROR %d: %s" % (code, msg[1][4:].decode()))
        check(msg[0] == typ, "got type %d, expected %d" % (msg[0], typ))
        return msg[1]

    def hello(self):
        p = self.expect(HELLO)
        check(len(p) >= 28, "short HELLO")
        proto, pid, hexv, limit, tracing = struct.unpack_from("<IIIIB", p)
        token, = struct.unpack_from("<Q", p, 20)
        check(proto == PROTO, "proto %#x" % proto)
        check(pid == os.getpid(), "pid %d" % pid)
        check(hexv == sys.hexversion, "hexversion %#x" % hexv)
        check(token == self.token, "token echo")
        return tracing, limit

    def state(self):
        p = self.expect(STATE)
        tracing, limit = struct.unpack_from("<B3xI", p)
        return tracing, limit

    def start(self, nframe, flags=0):
        self.send(START, struct.pack("<II", nframe, flags))
        return self.state()

    def stop(self):
        self.send(STOP)
        return self.state()

    def stats(self):
        self.send(STATS_REQ)
        p = self.expect(STATS)
        check(len(p) >= 48, "short STATS")
        f = struct.unpack_from("<QQQQQIB", p)
        keys = ("current", "peak", "tm_memory", "blocks", "rss", "limit",
                "tracing")
        return dict(zip(keys, f))

    def snapshot(self, tables=None, flags=0):
        """SNAPSHOT_REQ and decode the reply stream (wire.h, "Snapshots").

        tables: the connection's interning tables, {"strings": [...],
        "frames": [...], "tracebacks": [...]}, extended in place.  Returns
        (head dict, traces [(domain, size, traceback tuple)], end dict,
        new entries {kind: [...]}).  With ESTIMATES in flags each trace
        is (domain, size, traceback tuple, (count, alloc_size,
        alloc_count), traceback id)."""
        if tables is None:
            tables = self.tables
        self.send(SNAPSHOT_REQ, flags=flags)
        p = self.expect(SNAP_HEAD)
        check(len(p) >= SNAP_HEAD_FMT.size, "short SNAP_HEAD")
        keys = ("current", "peak", "tm_memory", "rss", "ntraces", "hexversion",
                "limit", "first_string", "first_frame", "first_traceback",
                "new_strings", "new_frames", "new_tracebacks", "tracing")
        head = dict(zip(keys, SNAP_HEAD_FMT.unpack_from(p)))
        head["sample_size"] = (struct.unpack_from("<Q", p, 76)[0]
                               if len(p) >= 84 else 0)
        head["table_rows"], head["table"] = (struct.unpack_from("<QI", p, 84)
                                             if len(p) >= 96 else (0, 0))
        strs, frames, tbs = (tables["strings"], tables["frames"],
                             tables["tracebacks"])
        check((head["first_string"], head["first_frame"],
               head["first_traceback"]) == (len(strs), len(frames), len(tbs)),
              "SNAP_HEAD first ids %r vs tables" % (head,))
        new = {"strings": [], "frames": [], "tracebacks": []}
        traces = []
        order = [SNAP_STRINGS, SNAP_FRAMES, SNAP_TRACEBACKS, SNAP_TRACES]
        last = 0
        while True:
            msg = self.recv()
            check(msg is not None, "EOF inside a snapshot")
            typ, p = msg
            if typ == SNAP_END:
                break
            check(typ in order, "unexpected type %d in a snapshot" % typ)
            check(order.index(typ) >= last, "chunk order")
            last = order.index(typ)
            first, count = struct.unpack_from("<II", p)
            off = 8
            if typ == SNAP_STRINGS:
                check(first == len(strs), "string chunk first id")
                for _ in range(count):
                    n, off = uvarint(p, off)
                    check(len(p) >= off + n, "truncated string")
                    v = p[off:off + n].decode("utf-8", "surrogateescape")
                    off += n
                    strs.append(v)
                    new["strings"].append(v)
            elif typ == SNAP_FRAMES:
                check(first == len(frames), "frame chunk first id")
                for _ in range(count):
                    sid, off = uvarint(p, off)
                    line, off = uvarint(p, off)
                    check(sid < len(strs), "frame refers to string %d" % sid)
                    frames.append((strs[sid], line))
                    new["frames"].append(frames[-1])
            elif typ == SNAP_TRACEBACKS:
                check(first == len(tbs), "traceback chunk first id")
                for _ in range(count):
                    total, off = uvarint(p, off)
                    n, off = uvarint(p, off)
                    ids = []
                    for _ in range(n):
                        fid, off = uvarint(p, off)
                        check(fid < len(frames), "bad frame id")
                        ids.append(fid)
                    tbs.append((tuple(frames[i] for i in ids), total))
                    new["tracebacks"].append(tbs[-1])
            else:
                check(first == len(traces), "trace chunk first index")
                for _ in range(count):
                    size, off = uvarint(p, off)
                    tb, off = uvarint(p, off)
                    dom, off = uvarint(p, off)
                    check(tb < len(tbs), "trace refers to traceback %d" % tb)
                    if flags & ESTIMATES:
                        # (count, alloc_size, alloc_count), and the id
                        est = []
                        for _ in range(3):
                            v, off = uvarint(p, off)
                            est.append(v)
                        traces.append((dom, size, tbs[tb], tuple(est), tb))
                    else:
                        traces.append((dom, size, tbs[tb]))
            check(off == len(p), "chunk %d: %d bytes left" % (typ, len(p) - off))
        check(len(p) >= SNAP_END_FMT.size, "short SNAP_END")
        keys = ("ntraces", "total_size", "nstrings", "nframes", "ntracebacks",
                "gil_ns", "gil_max_ns")
        end = dict(zip(keys, SNAP_END_FMT.unpack_from(p)))
        check(end["ntraces"] == head["ntraces"] == len(traces), "trace count")
        check(end["total_size"] == sum(t[1] for t in traces), "total size")
        check((end["nstrings"], end["nframes"], end["ntracebacks"]) ==
              (len(strs), len(frames), len(tbs)), "END table sizes")
        check((head["new_strings"], head["new_frames"], head["new_tracebacks"])
              == tuple(len(new[k]) for k in ("strings", "frames", "tracebacks")),
              "HEAD new counts")
        return head, traces, end, new

    def wait_closed(self):
        """The agent closed its ends: EOF on data, its fds are gone."""
        check(self.recv() is None, "expected EOF on data")
        self.check_closed("after detach")

    def check_closed(self, when):
        check(not fd_is(self.ctl_r, self.real_ctl_ino) and
              not fd_is(self.data_w, self.data_ino),
              "agent fds still open %s: ctl %d -> %s, data %d -> %s"
              % (when, self.ctl_r, fd_what(self.ctl_r), self.data_w,
                 fd_what(self.data_w)))

    def hang_up(self, what):
        """Close our end of the data pipe (the agent's writes then fail
        with EPIPE) and wait, 10 s at most, for the agent to close its
        ends; fail with `what` if it does not."""
        os.close(self.data_r)
        deadline = 200
        while fd_is(self.data_w, self.data_ino) and deadline:
            select.select([], [], [], 0.05)
            deadline -= 1
        check(not fd_is(self.data_w, self.data_ino) and
              not fd_is(self.ctl_r, self.real_ctl_ino), what)

    def detach(self):
        self.send(DETACH)
        self.wait_closed()
        self.close()

    def close(self):
        for fd in (self.ctl_w, self.data_r):
            if fd_open(fd):
                os.close(fd)


def uvarint(p, off):
    """LEB128 at p[off:]: (value, new offset)."""
    try:
        return leb128.decode(p, off)
    except ValueError as e:
        raise Fail(str(e))


def nothing_on(fd):
    r, _, _ = select.select([fd], [], [], 0.05)
    return not r


def test_session_basic():
    check(not tracemalloc.is_tracing(), "tracing already on")
    s = Session()
    s.bootstrap()
    check("_trmtop_agent" in sys.modules, "agent not loaded")
    check(s.hello() == (OFF, 1), "HELLO state")

    check(s.start(1) == (TRMTOP, 1), "START reply")
    check(tracemalloc.is_tracing(), "START did not start tracing")
    big = [bytes(1000) for _ in range(10000)]   # ~10 MB, traced
    st = s.stats()
    cur = tracemalloc.get_traced_memory()[0]
    check(st["tracing"] == TRMTOP and st["limit"] == 1, "STATS state")
    check(abs(st["current"] - cur) <= 0.05 * cur,
          "traced_current %d vs %d" % (st["current"], cur))
    check(st["current"] > 10000 * 1000, "traced_current too small")
    check(st["peak"] >= st["current"], "peak < current")
    check(st["blocks"] >= 10000, "blocks %d" % st["blocks"])
    check(st["tm_memory"] > 0, "tracemalloc memory")
    check(st["rss"] > 10 << 20, "rss %d" % st["rss"])
    del big

    check(s.stop() == (OFF, 1), "STOP reply")
    check(not tracemalloc.is_tracing(), "STOP left tracing on")
    st = s.stats()
    check(st["tracing"] == OFF and st["blocks"] == 0, "STATS after STOP")

    # Errors come back as ERROR frames and the session goes on.
    s.send(START, struct.pack("<II", 0, 0))   # nframe 0: ValueError
    p = s.expect(ERROR)
    check(struct.unpack_from("<I", p)[0] == ERR_PYTHON, "nframe 0 code")
    check(b"ValueError" in p, "nframe 0 text %r" % p)
    s.send(99)
    p = s.expect(ERROR)
    check(struct.unpack_from("<I", p)[0] == ERR_UNKNOWN, "unknown type")
    s.send(START, b"\x01")                     # short payload
    check(struct.unpack_from("<I", s.expect(ERROR))[0] == ERR_UNKNOWN,
          "short START")
    check(not tracemalloc.is_tracing(), "tracing after errors")
    s.detach()


def test_reconnect_keep_and_eof():
    # Second session: module reused, START KEEP survives the detach.
    s = Session()
    s.bootstrap(load=False)
    check(s.hello() == (OFF, 1), "second HELLO")
    check(s.start(3, KEEP) == (TRMTOP, 3), "START KEEP")
    s.detach()
    check(tracemalloc.is_tracing(), "KEEP tracing stopped at detach")

    # Third session sees trmtop's tracing and can stop it.
    s = Session()
    s.bootstrap(load=False)
    check(s.hello() == (TRMTOP, 3), "HELLO after KEEP")
    check(s.start(7) == (TRMTOP, 3), "START while trmtop traces")
    check(s.stop() == (OFF, 3), "STOP from a later session")
    check(not tracemalloc.is_tracing(), "not stopped")
    # Without KEEP, EOF on ctl (trmtop died) stops tracing.
    check(s.start(2) == (TRMTOP, 2), "START again")
    os.close(s.ctl_w)
    s.wait_closed()
    s.close()
    check(not tracemalloc.is_tracing(), "EOF did not stop tracing")

    # Closing the data reader (EPIPE side) also detaches.
    s = Session()
    s.bootstrap(load=False)
    s.hello()
    check(s.start(1) == (TRMTOP, 1), "START 4")
    s.hang_up("agent did not detach on a closed data pipe")
    check(not tracemalloc.is_tracing(), "EPIPE did not stop tracing")
    os.close(s.ctl_w)


def test_twice_and_busy():
    a = Session()
    a.bootstrap(load=False)
    a.hello()
    # The same bootstrap again (same token): nothing happens.
    a.start_direct()
    check(nothing_on(a.data_r), "second run with the same token spoke")
    check(fd_is(a.ctl_r, a.real_ctl_ino) and fd_is(a.data_w, a.data_ino), "same token closed fds")
    # Another trmtop: BUSY on its data pipe, its fds closed.
    b = Session()
    b.bootstrap(load=False)
    p = b.expect(ERROR)
    check(struct.unpack_from("<I", p)[0] == ERR_BUSY, "BUSY code")
    b.wait_closed()
    b.close()
    check(a.stats()["tracing"] == OFF, "first session still serves")
    a.detach()


def test_wrong_inode():
    s = Session(ino_ctl=12345)
    s.bootstrap(load=False)
    check(fd_is(s.ctl_r, s.real_ctl_ino) and fd_is(s.data_w, s.data_ino), "fds closed on bad inode")
    check(nothing_on(s.data_r), "agent spoke on bad inode")
    check(not tracemalloc.is_tracing(), "tracing changed")
    # Not pipes at all (fds reused by the application).
    with open(os.devnull, "rb") as f:
        sys.modules["_trmtop_agent"].start(f.fileno(), f.fileno(), 1, 1, 5)
        check(fd_open(f.fileno()), "closed a foreign fd")
    sys.modules["_trmtop_agent"].start(-1, 10 ** 6, 0, 0, 0)
    for fd in (s.ctl_r, s.ctl_w, s.data_r, s.data_w):
        os.close(fd)


def test_memfd_reused():
    """The memfd number now holds an application fd (or nothing): it is
    left alone; the loaded agent still starts (the pipes authenticate)."""
    s = Session()
    with open(os.devnull, "rb") as f:
        run_bootstrap(s.text(f.fileno()))
        check(fd_open(f.fileno()), "bootstrap closed an application fd")
    s.hello()
    s.detach()
    s = Session()
    run_bootstrap(s.text(10 ** 6))   # not open at all: no exception escapes
    s.hello()
    s.detach()


def test_abandoned():
    """trmtop gave up: ctl writer closed before the bootstrap ran."""
    tracemalloc.start(4)
    s = Session()
    os.close(s.ctl_w)
    s.bootstrap(load=False)
    check(not fd_is(s.ctl_r, s.real_ctl_ino) and not fd_is(s.data_w, s.data_ino),
          "abandoned: fds not closed")
    check(s.recv() is None, "abandoned: agent spoke")
    check(tracemalloc.is_tracing() and tracemalloc.get_traceback_limit() == 4,
          "abandoned: tracing changed")
    os.close(s.data_r)
    tracemalloc.stop()


def test_application_tracing():
    tracemalloc.start(5)
    s = Session()
    s.bootstrap(load=False)
    check(s.hello() == (APPLICATION, 5), "HELLO APPLICATION")
    check(s.start(1) == (APPLICATION, 5), "START kept app tracing")
    check(s.stats()["tracing"] == APPLICATION, "STATS APPLICATION")
    check(s.stop() == (APPLICATION, 5), "STOP left app tracing")
    check(tracemalloc.is_tracing(), "STOP stopped the app's tracing")
    s.detach()
    check(tracemalloc.is_tracing() and tracemalloc.get_traceback_limit() == 5,
          "detach changed the app's tracing")
    tracemalloc.stop()


def in_child(fn, what):
    """Fork (the warning of 3.12+ about threads silenced), run fn() in the
    child and exit it at once: 0 if fn returned, 1 (said on stderr) if it
    raised; check in the parent that the child exited 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn()
        except BaseException as e:  # report and exit without cleanup
            sys.stderr.write("child: %s\n" % e)
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
          "%s: %r" % (what, status))


def test_fork():
    s = Session()
    s.bootstrap(load=False)
    s.hello()

    def child():
        # The agent's inherited ends are closed in the child...
        check(not fd_is(s.ctl_r, s.real_ctl_ino) and not fd_is(s.data_w, s.data_ino),
              "child kept agent fds")
        # ...and a new session works there.
        c = Session()
        c.start_direct()
        c.hello()
        check(c.stats()["tracing"] == OFF, "child stats")
        c.detach()
    in_child(child, "fork child failed")
    check(s.stats()["tracing"] == OFF, "parent session after fork")
    s.detach()


WORKLOAD = """
def leaf(n, size):
    return [bytearray(size + i % 7) for i in range(n)]

def mid(n, size):
    return leaf(n, size) + [bytes(size * 3) for _ in range(n // 2)]

def deep(k, n, size):
    if k == 0:
        return mid(n, size)
    return deep(k - 1, n, size)

def build():
    keep = [leaf(300, 40), mid(200, 1000), deep(40, 50, 77)]
    keep.append({i: str(i) * 3 for i in range(500)})
    return keep
"""


def load_workload(name, text=None):
    """Write WORKLOAD (or text) to a file called name.py and import it:
    its allocations are the ones compared between the wire and
    tracemalloc."""
    d = tempfile.mkdtemp(prefix="trmtop-")
    path = os.path.join(d, name + ".py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(WORKLOAD if text is None else text)
    sys.path.insert(0, d)
    try:
        mod = __import__(name)
    finally:
        sys.path.remove(d)
    return mod, path


def truth_traces(raw):
    """_get_traces() tuples as (domain, size, (frames, total_nframe))."""
    out = []
    for t in raw:
        total = t[3] if len(t) > 3 else len(t[2])
        out.append((t[0], t[1], (tuple(t[2]), total)))
    return out


def noise(trace):
    """The test's own and the agent's allocations: a frame of this file,
    or no Python frame at all (the agent thread)."""
    frames = trace[2][0]
    return (not frames or frames[0] == ("<unknown>", 0) or
            any(f[0] == __file__ for f in frames))


def used(traces):
    """Strings, frames and tracebacks the traces refer to."""
    tbs = set(t[2] for t in traces)
    frames = set(f for tb in tbs for f in tb[0])
    return set(f[0] for f in frames), frames, tbs


def test_snapshot():
    check(not tracemalloc.is_tracing(), "tracing already on")
    s = Session()
    s.bootstrap(load=False)
    s.hello()
    # Tracing off: ERROR NOT_TRACING, and the session goes on.
    s.send(SNAPSHOT_REQ)
    p = s.expect(ERROR)
    check(struct.unpack_from("<I", p)[0] == ERR_NOT_TRACING,
          "snapshot while not tracing: %r" % p)
    check(s.start(25) == (TRMTOP, 25), "START 25")

    wl, wl_path = load_workload("trm_wl_\u00fc%d" % os.getpid())
    keep = wl.build()
    try:
        import ctypes   # a trace in another domain, with a Python traceback
        track = ctypes.pythonapi.PyTraceMalloc_Track
        track.argtypes = (ctypes.c_uint, ctypes.c_size_t, ctypes.c_size_t)
        untrack = ctypes.pythonapi.PyTraceMalloc_Untrack
        untrack.argtypes = (ctypes.c_uint, ctypes.c_size_t)
    except (ImportError, AttributeError):
        track = None
    if track:
        wl.track = track
        exec(compile("track(7, 0x1000, 4242)", wl_path, "exec"), wl.__dict__)

    gc.collect()
    gc.disable()
    try:
        t1 = truth_traces(_tracemalloc._get_traces())
        head, traces, end, new = s.snapshot()
        t2 = truth_traces(_tracemalloc._get_traces())
    finally:
        gc.enable()

    check(head["tracing"] == TRMTOP and head["limit"] == 25, "HEAD state")
    check(head["hexversion"] == sys.hexversion, "HEAD hexversion")
    check(head["current"] > 0 and head["peak"] >= head["current"] and
          head["tm_memory"] > 0 and head["rss"] > 0, "HEAD memory %r" % head)
    check(head["first_string"] == head["first_frame"] ==
          head["first_traceback"] == 0, "first snapshot starts at id 0")
    check(end["gil_ns"] >= end["gil_max_ns"] > 0, "END GIL times")

    a = Counter(t for t in traces if not noise(t))
    b1 = Counter(t for t in t1 if not noise(t))
    b2 = Counter(t for t in t2 if not noise(t))
    check(b1 == b2, "process not quiescent: %r" % ((b1 - b2) + (b2 - b1)))
    if a != b1:
        raise Fail("wire vs tracemalloc: only on the wire %r; only in "
                   "tracemalloc %r" % (list((a - b1).items())[:5],
                                      list((b1 - a).items())[:5]))
    mine = [t for t in traces if any(f[0] == wl_path for f in t[2][0])]
    check(len(mine) >= 1000, "workload traces: %d" % len(mine))
    check(any(t[2][1] > len(t[2][0]) == 25 for t in mine) or
          sys.version_info < (3, 9), "total_nframe of truncated tracebacks")
    if track:
        check(sum(1 for t in traces if t[0] == 7 and t[1] == 4242) == 1,
              "domain 7 trace")
    sent_strs = set(s.tables["strings"])
    check(len(sent_strs) == len(s.tables["strings"]), "duplicate strings")
    check(used(traces) == (set(new["strings"]), set(new["frames"]),
                           set(new["tracebacks"])),
          "first snapshot: sent exactly what it uses")

    mine = Counter(mine)
    del t1, t2, a, b1, b2, traces   # keep the second snapshot small

    # Second snapshot on the connection: only new content is sent.
    before = {k: list(v) for k, v in s.tables.items()}
    wl2, wl2_path = load_workload("trm_wl2_%d" % os.getpid())
    keep2 = wl2.build()
    head2, traces2, end2, new2 = s.snapshot()
    check((head2["first_string"], head2["first_frame"],
           head2["first_traceback"]) ==
          (end["nstrings"], end["nframes"], end["ntracebacks"]),
          "second snapshot's first ids")
    u = used(traces2)
    for i, k in enumerate(("strings", "frames", "tracebacks")):
        check(not set(new2[k]) & set(before[k]), "%s sent again" % k)
        check(set(new2[k]) == u[i] - set(before[k]),
              "second snapshot %s: sent %d, new %d" %
              (k, len(new2[k]), len(u[i] - set(before[k]))))
    check(wl2_path in new2["strings"] and wl_path not in new2["strings"],
          "second snapshot strings")
    check(len(new2["strings"]) < 20, "second snapshot sent %d strings"
          % len(new2["strings"]))
    mine2 = Counter(t for t in traces2 if any(f[0] == wl_path for f in t[2][0]))
    check(mine2 == mine, "first workload differs in snapshot 2")

    if track:
        exec(compile("untrack(7, 0x1000)", wl_path, "exec"),
             dict(untrack=untrack))
    del keep, keep2
    check(s.stop()[0] == OFF, "STOP")
    s.send(SNAPSHOT_REQ)
    check(struct.unpack_from("<I", s.expect(ERROR))[0] == ERR_NOT_TRACING,
          "snapshot after STOP")
    s.detach()


def test_snapshot_detach_mid_stream():
    """trmtop goes away while the agent writes a big snapshot: the agent
    detaches (EPIPE), stops its tracing and frees its tables."""
    s = Session()
    s.bootstrap(load=False)
    s.hello()
    check(s.start(1) == (TRMTOP, 1), "START")
    keep = [bytes(i % 50) + b"x" for i in range(200000)]
    s.send(SNAPSHOT_REQ)
    s.expect(SNAP_HEAD)
    s.hang_up("agent did not detach mid-snapshot")
    check(not tracemalloc.is_tracing(), "tracing left on")
    os.close(s.ctl_w)
    del keep


def exit_child():
    """Mode --exit-child: leave a session (tracing on) active at exit."""
    s = Session()
    s.bootstrap()
    s.hello()
    s.start(1)
    sys.stdout.write("ok\n")
    sys.stdout.flush()


def test_exit_with_session():
    p = subprocess.run([sys.executable, __file__, "--exit-child", AGENT_SO],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    check(p.returncode == 0 and p.stdout == b"ok\n" and p.stderr == b"",
          "exit with an active session: rc=%d out=%r err=%r"
          % (p.returncode, p.stdout, p.stderr))

def raw_allocator():
    """get(): PyMem_GetAllocator(PYMEM_DOMAIN_RAW, or the domain get(d)
    names) as (ctx, malloc, calloc, realloc, free) addresses, and a
    reader of such structs, through ctypes (None where ctypes is
    missing)."""
    try:
        import ctypes
    except ImportError:
        return None, None

    class Alloc(ctypes.Structure):
        _fields_ = [(n, ctypes.c_void_p)
                    for n in ("ctx", "malloc", "calloc", "realloc", "free")]

    def get(domain=0):
        a = Alloc()
        ctypes.pythonapi.PyMem_GetAllocator(domain, ctypes.byref(a))
        return tuple(getattr(a, n) or 0 for n, _ in Alloc._fields_)

    def at(addr):
        a = Alloc.from_address(addr)
        return tuple(getattr(a, n) or 0 for n, _ in Alloc._fields_)

    return get, at


def test_raw_allocator_guard():
    """While trmtop traces, tracemalloc wraps the agent's guard, which
    wraps the original raw allocator (so that tracemalloc's switch of the
    raw allocator never mixes a new function with an old context); after
    STOP the original allocator is back, field for field."""
    get, at = raw_allocator()
    if get is None:
        return
    orig = get()
    s = Session()
    s.bootstrap(load="_trmtop_agent" not in sys.modules)
    s.hello()
    for _ in range(3):
        check(s.start(1) == (TRMTOP, 1), "START")
        tm = get()
        check(tm[1:] != orig[1:] and tm[0] != 0, "tracemalloc hooks not installed")
        guard = at(tm[0])            # what tracemalloc wraps: the guard
        check(guard[1:] != orig[1:], "tracemalloc wraps the original allocator directly")
        check(guard[0] != 0 and at(guard[0]) == orig,
              "the guard's context is not a copy of the original allocator")
        threads = [threading.Thread(target=lambda: bytes(100)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(s.stop() == (OFF, 1), "STOP")
        check(get() == orig, "raw allocator not restored after STOP: %r vs %r" % (get(), orig))
    s.detach()



TESTS = [test_session_basic, test_reconnect_keep_and_eof, test_twice_and_busy,
         test_wrong_inode, test_memfd_reused, test_abandoned, test_application_tracing,
         test_fork, test_exit_with_session, test_snapshot,
         test_snapshot_detach_mid_stream, test_raw_allocator_guard]


def main(argv):
    global AGENT_SO
    if len(argv) == 3 and argv[1] == "--exit-child":
        AGENT_SO = argv[2]
        exit_child()
        return 0
    if len(argv) != 2:
        sys.stderr.write("usage: agent_selftest.py AGENT_SO\n")
        return 2
    if sys.version_info < (3, 8):
        print("1..0 # SKIP needs Python 3.8+")
        return 77
    AGENT_SO = argv[1]
    return run_tap(TESTS)


def run_tap(tests, cleanup=None):
    """Run tests, printing TAP; after a failure, cleanup() (if any) and
    tracemalloc stopped.  The exit code: 0, or 1 if one failed."""
    failed = 0
    print("1..%d" % len(tests))
    for i, t in enumerate(tests, 1):
        try:
            t()
            print("ok %d - %s" % (i, t.__name__))
        except Exception as e:
            failed += 1
            print("not ok %d - %s: %s" % (i, t.__name__, e))
            if cleanup:
                cleanup()
            if tracemalloc.is_tracing():
                tracemalloc.stop()
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
