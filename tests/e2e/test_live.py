"""The live view, `trmtop --pid PID` (src/live/, man trmtop).

Batch mode (standard output not a terminal): text blocks and JSON lines,
against the leaker target (tests/targets/leaker.py), its leaking line's
size and count compared with the target's own tracemalloc statistic of
that line (`linestat`); the native-memory line against native_grower.py
(libc malloc through ctypes: RSS grows, traced memory does not; and
bytearrays: both grow); the target exiting while watched; signals.

Nothing here sleeps to synchronise: trmtop's output is read line by line
with a deadline, and trmtop is stopped (SIGSTOP) while the test changes
the target between two refreshes, so that a later refresh is known to
come after the change.
"""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import time

import pytest

from conftest import (EXIT_CODE, PROC_TIMEOUT, TRMTOP_TIMEOUT, _env, agent_waits_for_gil, end_spin,
                      marked_line, run_trmtop, spin_flag, sustained, trmtop_path, wait_spinning, wait_until)

LEAK_SIZE = 10 * 1024  # tests/targets/leaker.py LEAK_SIZE
MIB = 1 << 20
INTERVAL = "200ms"


def fmt_size(size, sign=False):
    """tracemalloc._format_size, as trmtop prints sizes."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 100 and unit != "B":
            return ("%+.1f %s" if sign else "%.1f %s") % (size, unit)
        if abs(size) < 10 * 1024 or unit == "TiB":
            return ("%+.0f %s" if sign else "%.0f %s") % (size, unit)
        size /= 1024


class Live(object):
    """A `trmtop --pid PID --batch ...` running, its output read line by
    line with a deadline."""

    def __init__(self, pid, *args):
        self.argv = [trmtop_path(), "--pid", str(pid), "--batch", "--interval", INTERVAL]
        self.argv += [str(a) for a in args]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=_env())
        self.buf = b""
        self.lines = []

    def readline(self, timeout=TRMTOP_TIMEOUT):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                pytest.fail("no output from %s within %ss (stderr: %r)"
                            % (" ".join(self.argv), timeout, self.proc.stderr.read()))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                data = os.read(fd, 65536)
                if not data:
                    return None
                self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.decode("utf-8", errors="replace")
        self.lines.append(line)
        return line

    def block(self):
        """The next text block: its lines, from 'pid N' to the blank line
        after the table; None at the end of the output."""
        out = []
        blanks = 0
        while True:
            line = self.readline()
            if line is None:
                assert not out, "output ended inside a block: %r" % out
                return None
            if not out and not line.startswith("pid "):
                continue
            out.append(line)
            if line == "":
                blanks += 1
                if blanks == 2:
                    return out

    def json(self):
        line = self.readline()
        return None if line is None else json.loads(line)

    def wait(self, timeout=TRMTOP_TIMEOUT):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("%s did not end within %ss" % (" ".join(self.argv), timeout))
        self.buf += out
        return self.proc.returncode, err.decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def live():
    started = []

    def _live(pid, *args):
        lv = Live(pid, *args)
        started.append(lv)
        return lv

    yield _live
    for lv in started:
        lv.kill()


ROW = re.compile(r"^\s*(\d+) (.)\s+(\S+ \S+)\s+(\S+ \S+)\s+(\d+)\s+([-+]\d+)\s+(\S+ \S+)\s+"
                 r"(\S+ \S+/min|0 B/min)\s+(\S+):(\d+)(?:  (.*))?$")


def leak_row(block, filename):
    """(size text, count, source, suspect) of the row of filename's
    LEAK-LINE in a text block."""
    for line in block:
        m = ROW.match(line)
        if m and m.group(9) == filename:
            return m.group(3), int(m.group(5)), m.group(11), m.group(2) == "!"
    return None


def leak_line_no(path):
    with open(path) as f:
        for no, text in enumerate(f, 1):
            if text.rstrip().endswith("# LEAK-LINE") and "LEAKED.append" in text:
                return no
    raise AssertionError("no LEAK-LINE in %s" % path)


def test_batch(python, spawn, live):
    """Three text blocks: the header, the leaking line growing between
    them, its size and count those of the target's own tracemalloc; the
    JSON of the same state matches the text; tracing (turned on by
    `trmtop start` before) stays on; the target exiting while watched ends
    the view with exit 0."""
    t = spawn(python, "leaker")
    assert run_trmtop("start", "--pid", t.pid).rc == 0
    t.ok("leak 20")
    lv = live(t.pid, "--iterations", 3)
    first = lv.block()
    assert first[0].startswith("pid %d " % t.pid), first
    assert "tracing: by trmtop start" in first[0], first
    assert re.match(r"^traced \S+ \S+  peak .*  RSS .*  tracemalloc .*  blocks \d+$", first[1]), first
    assert first[2].startswith("refresh "), first
    assert first[3].startswith("native memory: "), first
    # the next refresh comes after the leak: trmtop is stopped meanwhile
    os.kill(lv.proc.pid, signal.SIGSTOP)
    try:
        t.ok("leak 30")
    finally:
        os.kill(lv.proc.pid, signal.SIGCONT)
    second = lv.block()
    third = lv.block()
    assert lv.block() is None
    rc, err = lv.wait()
    assert rc == 0 and err == "", err

    leaker = t.script
    line = leak_line_no(leaker)
    rows = [leak_row(b, "%s" % leaker) for b in (first, second, third)]
    # the location is FILE:LINE of the LEAK-LINE, with its source line
    assert all(r is not None for r in rows), (first, second, third)
    m = [l for l in third if ("%s:%d" % (leaker, line)) in l]
    assert m and "LEAKED.append(bytearray(LEAK_SIZE))" in m[0], third
    truth = json.loads(t.cmd("linestat"))
    # (a bytearray is two blocks, and the list grows at the same line)
    assert rows[0][1] < rows[2][1] and rows[0][1] <= rows[1][1] <= rows[2][1], rows
    assert rows[2][1] == truth["count"], (rows, truth)
    assert rows[2][0] == fmt_size(truth["size"]), (rows, truth)

    # JSON: the same state, one object a refresh
    lv = live(t.pid, "--iterations", 2, "--format", "json")
    objs = [lv.json(), lv.json()]
    assert lv.json() is None
    rc, err = lv.wait()
    assert rc == 0 and err == "", err
    for o in objs:
        assert o["pid"] == t.pid and o["tracing"] == "trmtop", o
        assert o["key"] == "lineno" and o["interval_ms"] == 200
        assert o["traceback_limit"] == 1
        assert o["traced"] > 0 and o["rss"] > 0 and o["blocks"] > 0
        row = [r for r in o["rows"] if r["filename"] == leaker and r["lineno"] == line]
        assert len(row) == 1, o["rows"]
        row = row[0]
        assert row["size"] == truth["size"] and row["count"] == truth["count"], (row, truth)
        assert row["source"] == "LEAKED.append(bytearray(LEAK_SIZE))   # LEAK-LINE"
        assert row["frames"] == [{"filename": leaker, "lineno": line}]
        # the text said the same
        assert fmt_size(row["size"]) == rows[2][0] and row["count"] == rows[2][1]
        assert o["native"]["verdict"] in ("unknown", "steady", "traced", "untraced")
    assert objs[1]["refresh"] == 2 and objs[1]["since_baseline"] == 2
    leak1 = [r for r in objs[1]["rows"] if r["filename"] == leaker][0]
    assert leak1["size_diff"] == 0 and leak1["count_diff"] == 0 and leak1["trend"] == [truth["size"]] * 2
    assert t.truth()["tracing"] is True, "the view changed the tracing it found"

    # the target exits while watched: said, exit 0
    lv = live(t.pid)
    assert lv.block() is not None
    assert t.exit() == EXIT_CODE
    rc, err = lv.wait()
    assert rc == 0, err
    assert "trmtop: pid %d exited" % t.pid in err, err


def watch_native(t, live, grow, want):
    """Watch t in JSON batch mode; after the first refresh (the baseline),
    grow; then read refreshes until traced memory or RSS reflect the
    growth, and return that refresh's native verdict object.  trmtop is
    then interrupted (SIGINT): exit 130, tracing off again."""
    lv = live(t.pid, "--format", "json")
    first = lv.json()
    assert first["tracing"] == "view" and first["native"]["verdict"] == "unknown", first
    t.ok(grow)
    deadline = time.monotonic() + TRMTOP_TIMEOUT
    while True:
        o = lv.json()
        assert o is not None, lv.wait()
        n = o["native"]
        if want(n):
            break
        assert time.monotonic() < deadline, "no refresh saw the growth: %r" % o
    lv.proc.send_signal(signal.SIGINT)
    rc, err = lv.wait()
    assert rc == 130, err
    assert "cancelled while watching (SIGINT); tracing turned off again" in err, err
    assert t.truth()["tracing"] is False
    return o


def test_native_memory(python_faults, spawn, live):
    """RSS grows by 48 MiB of libc malloc (touched) while traced memory
    stays flat: the native-memory line says memory grew outside Python's
    allocators.  Then, from a new baseline, 48 MiB of bytearrays: RSS
    grows with traced memory, and the line says Python's allocations
    account for it."""
    t = spawn(python_faults, "native_grower")
    o = watch_native(t, live, "native %d" % (48 * MIB),
                     lambda n: n["rss_diff"] >= 40 * MIB)
    n = o["native"]
    assert n["verdict"] == "untraced", o
    assert abs(n["traced_diff"]) < 4 * MIB, n
    assert "grew outside Python's allocators" in n["text"], n

    o = watch_native(t, live, "leak %d" % (48 * MIB // LEAK_SIZE),
                     lambda n: n["traced_diff"] >= 40 * MIB)
    n = o["native"]
    assert n["verdict"] == "traced", o
    assert "outside" not in n["text"] and "Python's allocations account" in n["text"], n
    t.check_healthy()
    assert t.exit() == EXIT_CODE


# ---------------------------------------------------------------------------
# The terminal view, in tmux


UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


def parse_size(text):
    num, unit = text.split()
    return float(num) * UNITS[unit]


def drip_line_no(path):
    return marked_line(path, "DRIP-LINE")


class Tmux(object):
    """A tmux server of its own (socket in the test's folder) with one
    window running bash; commands are typed into it."""

    def __init__(self, d, width=160, height=45):
        self.d = d
        self.sock = os.path.join(d, "tmux.sock")
        self.pidfile = os.path.join(d, "trmtop.pid")
        env = dict(_env(), LANG="C.UTF-8", LC_ALL="C.UTF-8", PS1="$ ", HOME=d)
        env.pop("TMUX", None)
        subprocess.run(["tmux", "-S", self.sock, "-f", "/dev/null", "new-session", "-d",
                        "-x", str(width), "-y", str(height), "-c", d,
                        "bash --norc --noprofile"], check=True, env=env)
        self.tmux("set-option", "-g", "window-size", "manual")

    def tmux(self, *args):
        return subprocess.run(["tmux", "-S", self.sock] + list(args), check=True,
                              stdout=subprocess.PIPE).stdout.decode(errors="replace")

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "0", *keys)

    def type(self, text):
        self.tmux("send-keys", "-t", "0", "-l", text)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "0")

    def wait(self, pred, what, timeout=float(os.environ.get("LIVE_WAIT", TRMTOP_TIMEOUT))):
        last = [""]

        def check():
            last[0] = self.screen()
            return pred(last[0])
        try:
            wait_until(check, timeout, what)
            return last[0]
        except BaseException:
            print("last screen:\n" + last[0])
            raise

    def wait_text(self, text, timeout=None):
        if timeout is None:
            return self.wait(lambda s: text in s, repr(text))
        return self.wait(lambda s: text in s, repr(text), timeout)

    def run_trmtop(self, pid, *args):
        """Start trmtop in the window (bash records its pid, then execs
        it); the exit status is echoed when it ends."""
        argv = " ".join([os.path.abspath(trmtop_path()), "--pid", str(pid)] + [str(a) for a in args])
        self.type("clear; bash -c 'echo $$ > %s; exec %s'; echo TRMTOP-EXIT=$?"
                  % (self.pidfile, argv))
        self.keys("Enter")
        self.wait_text("pid %d  " % pid)
        with open(self.pidfile) as f:
            return int(f.read())

    def usable(self):
        """The pane takes a command and shows its output again."""
        self.keys("Enter")
        self.type("clear; echo usable-$((40+2))")
        self.keys("Enter")
        self.wait(lambda s: "usable-42" in s.replace("usable-$((40+2))", ""),
                  "the shell to answer in the pane")

    def close(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], stderr=subprocess.DEVNULL)


@pytest.fixture
def tmux(tmp_path):
    if not shutil.which("tmux"):
        pytest.fail("tmux is not installed (scripts/deps.sh installs it)")
    tm = Tmux(str(tmp_path))
    yield tm
    tm.close()


def row_of(screen, loc):
    for line in screen.splitlines():
        if loc in line:
            return line
    return None


def dsize_of(screen, loc):
    """The size difference of loc's row (bytes), or None."""
    line = row_of(screen, loc)
    if line is None:
        return None
    m = re.match(r"^\s*\d+ [! ]\s+(\S+ \S+)\s+([-+]\S+ \S+)", line)
    return parse_size(m.group(2).lstrip("+")) if m else None


def table_rows(screen):
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if "LOCATION" in line:
            return [l for l in lines[i + 1:] if re.match(r"^\s*\d+ ", l)]
    return []


def test_tui(python, spawn, tmux, tmp_path):
    """The full-screen view of a target leaking steadily from one line:
    header and leaking line, its size difference growing, the suspect,
    sort, group-by, filter keys, the traceback, the baseline, a resize,
    writing a .trm, and q: exit 0, tracing off again, the pane usable."""
    t = spawn(python, "native_grower")
    t.ok("drip 10")
    assert t.truth()["tracing"] is False
    script = t.script
    loc = "%s:%d" % (script, drip_line_no(script))
    tmux.run_trmtop(t.pid, "--interval", INTERVAL)
    s = tmux.wait(lambda s: dsize_of(s, loc), "the leaking line")
    assert "tracing: this view since" in s and "Python %s" % python.version_str in s, s
    assert re.search(r"traced \S+ \S+  peak \S+ \S+  RSS \S+ \S+  tracemalloc", s), s
    assert "native memory: " in s and "refresh 200ms" in s or "stretched" in s, s
    assert "DRIPPED.append(bytearray(" in row_of(s, loc), s
    d0 = dsize_of(s, loc)
    tmux.wait(lambda s: (dsize_of(s, loc) or 0) > d0, "the size difference to grow")

    # L: the suspects only, the dripping line among them, all marked
    tmux.wait(lambda s: row_of(s, loc) and re.match(r"^\s*\d+ !", row_of(s, loc)),
              "the leaking line marked a suspect")
    tmux.keys("L")
    s = tmux.wait_text("leak suspects only")
    rows = table_rows(s)
    assert rows and all(re.match(r"^\s*\d+ !", r) for r in rows), s
    tmux.keys("L")
    # sort keys
    for key, name in (("d", "size difference"), ("c", "count"), ("g", "growth"),
                      ("s", "size")):
        tmux.keys(key)
        s = tmux.wait_text("sort: %s " % name)
    # group-by keys
    tmux.keys("f")
    s = tmux.wait(lambda s: "group: filename" in s and script + ":0" in s
                  or "grouped by filename" in s and script + ":0" in s, "grouped by file")
    tmux.keys("t")
    s = tmux.wait(lambda s: "grouped by traceback" in s and loc in s, "grouped by traceback")
    tmux.keys("l")
    s = tmux.wait(lambda s: "grouped by lineno" in s and loc in s, "grouped by line")
    # filter: none matches, Esc clears; a match keeps only its rows
    tmux.keys("/")
    tmux.type("*nomatch*")
    tmux.keys("Enter")
    s = tmux.wait_text("no rows")
    assert "filter: *nomatch*" in s
    tmux.keys("Escape")
    tmux.wait(lambda s: loc in s and "filter:" not in s, "the filter cleared")
    tmux.keys("/")
    tmux.type("*native_grower*")
    tmux.keys("Enter")
    s = tmux.wait(lambda s: "filter: *native_grower*" in s and loc in s, "the filter applied")
    assert all("native_grower" in r for r in table_rows(s)), s
    # Enter: the traceback of the selected (largest) row
    tmux.keys("s", "Home", "Enter")
    s = tmux.wait_text("Traceback of #1")
    assert 'File "%s", line %d' % (script, drip_line_no(script)) in s, s
    assert "    DRIPPED.append(bytearray(LEAK_SIZE))   # DRIP-LINE" in s, s
    assert "The traceback limit is 1" in s and "--frames 25" in s, s
    tmux.keys("Escape")
    tmux.keys("Escape")
    s = tmux.wait(lambda s: "LOCATION" in s and loc in s and "filter:" not in s, "the table")
    # b: differences start again from 0
    before = dsize_of(s, loc)
    tmux.keys("b")
    tmux.wait_text("baseline set")
    tmux.wait(lambda s: dsize_of(s, loc) is not None and dsize_of(s, loc) < before,
              "the size difference to restart")
    # a resize redraws: narrow, the location kept (shortened from the left)
    tmux.tmux("resize-window", "-t", "0", "-x", "72", "-y", "20")
    short = os.path.basename(script) + ":%d" % drip_line_no(script)
    s = tmux.wait(lambda s: any(short in l and l.rstrip().endswith(short) or short + "  " in l
                                for l in s.splitlines()[7:]), "the narrow table")
    assert all(len(l) <= 72 for l in s.splitlines()), s
    tmux.tmux("resize-window", "-t", "0", "-x", "160", "-y", "45")
    tmux.wait(lambda s: loc in s, "the wide table again")
    # h: the keys; p pauses; + and - change the interval
    tmux.keys("h")
    s = tmux.wait_text("trmtop live view: keys")
    assert "leak suspects only" in s and "baseline = now" in s, s
    tmux.keys("x")
    tmux.wait_text("LOCATION")
    tmux.keys("p")
    tmux.wait(lambda s: "paused (p resumes)" in s and "PAUSED" in s, "paused")
    tmux.keys("p")
    tmux.wait(lambda s: "resumed" in s and "PAUSED" not in s, "resumed")
    tmux.keys("+")
    tmux.wait(lambda s: "refresh interval 250ms" in s and re.search(r"^refresh 250ms", s, re.M),
              "the longer interval")
    tmux.keys("-")
    tmux.wait_text("refresh interval 100ms")
    # w: a .trm that `trmtop top` reads
    tmux.keys("w")
    s = tmux.wait_text("wrote trmtop-%d-" % t.pid)
    name = re.search(r"wrote (trmtop-\d+-\d+-\d+\.trm)", s).group(1)
    res = run_trmtop("top", os.path.join(str(tmp_path), name))
    assert res.rc == 0 and loc in res.out, res
    # a second w (within the same second, most likely) keeps the first
    first = os.stat(os.path.join(str(tmp_path), name))
    tmux.keys("w")
    s = tmux.wait(lambda s: re.search(r"wrote (trmtop-\d+-\d+-\d+(-2)?\.trm)", s)
                  and re.search(r"wrote (trmtop-\d+-\d+-\d+(-2)?\.trm)", s).group(1) != name,
                  "a second file")
    again = os.stat(os.path.join(str(tmp_path), name))
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns), \
        "the second w replaced the first file"
    # q: exit 0, tracing off again, the terminal usable
    tmux.keys("q")
    tmux.wait_text("TRMTOP-EXIT=0")
    assert t.truth()["tracing"] is False
    tmux.usable()
    t.ok("drip 0")
    assert t.exit() == EXIT_CODE


@pytest.mark.parametrize("how", ["target-killed", "SIGKILL", "SIGHUP"])
def test_tui_ends(python_faults, how, spawn, tmux):
    """The view ends with its target killed (said, exit 0), with trmtop
    SIGKILLed (the agent turns tracing off on the hang-up) or sent SIGHUP
    (exit 129, tracing off): the pane stays usable."""
    t = spawn(python_faults, "native_grower")
    t.ok("drip 20")
    pid = tmux.run_trmtop(t.pid, "--interval", INTERVAL)
    tmux.wait_text("refreshes 2 ")
    if how == "target-killed":
        t.may_die = True
        t.proc.kill()
        s = tmux.wait_text("TRMTOP-EXIT=0")
        assert "trmtop: pid %d exited" % t.pid in s, s
    else:
        os.kill(pid, signal.SIGKILL if how == "SIGKILL" else signal.SIGHUP)
        s = tmux.wait_text("TRMTOP-EXIT=%d" % (137 if how == "SIGKILL" else 129))
        wait_until(lambda: t.truth()["tracing"] is False, TRMTOP_TIMEOUT,
                   "the agent to turn tracing off")
    tmux.usable()
    if how != "target-killed":
        t.ok("drip 0")
        assert t.exit() == EXIT_CODE


@pytest.mark.parametrize("twice", [False, True], ids=["q", "qq"])
def test_tui_quit_with_refresh_in_flight(python_faults, twice, spawn, tmux, tmp_path):
    """q while a refresh waits for the GIL (the main thread spins in C):
    the view says it quits once that refresh ends, and does when the spin
    ends: exit 0, tracing off (it used to say 'a request is in flight',
    exit 2, tracing left on -- seen in CI as a q that came mid-refresh).
    q twice leaves at once, exit 0, saying the agent turns tracing off
    when it can; it does once the spin ends."""
    flag = spin_flag(tmp_path)
    t = spawn(python_faults, "c_spin", args=[flag, "after-tracing"])
    tmux.run_trmtop(t.pid, "--interval", INTERVAL)
    wait_spinning(t, flag)
    wait_until(sustained(lambda: agent_waits_for_gil(t.pid)), TRMTOP_TIMEOUT,
               "a refresh waiting for the GIL")
    if twice:
        tmux.keys("q", "q")
        s = tmux.wait_text("TRMTOP-EXIT=0")
        assert re.search(r"trmtop: pid %d: left without waiting for the refresh in flight; "
                         r"the agent turns tracing off once the target lets it run" % t.pid, s), s
        end_spin(flag)
    else:
        tmux.keys("q")
        s = tmux.wait_text("quitting once the refresh in flight ends (q: now)")
        assert "TRMTOP-EXIT" not in s, s
        end_spin(flag)
        s = tmux.wait_text("TRMTOP-EXIT=0")
        assert "trmtop:" not in s, s
        assert t.truth()["tracing"] is False
    wait_until(lambda: t.truth()["tracing"] is False, PROC_TIMEOUT,
               "the agent to turn tracing off")
    tmux.usable()
    t.check_healthy()
    assert t.exit() == EXIT_CODE


def test_tui_sampled(python_faults, spawn, tmux):
    """--sample in the terminal view: the header says sampling, the
    estimated columns are marked, the leaking line is there; leaving
    stops the sampler the view started and only that: a sampler kept by
    `trmtop start --sample` stays on after a view of either kind."""
    t = spawn(python_faults, "native_grower")
    t.ok("drip 5")
    script = t.script
    loc = "%s:%d" % (script, drip_line_no(script))
    tmux.run_trmtop(t.pid, "--interval", INTERVAL, "--sample=64KiB")
    s = tmux.wait(lambda s: loc in s and "\u2248SIZE" in s, "the sampled table")
    assert "sampling: this view since" in s and "every 64.0 KiB, 16 frames" in s, s
    assert re.search(r"^estimated: in use \S+ \S+  blocks \d+  RSS \S+ \S+  sampler ", s, re.M), s
    tmux.keys("q")
    tmux.wait_text("TRMTOP-EXIT=0")
    st = json.loads(run_trmtop("stats", "--pid", t.pid, "--json").out)
    assert "sample_size" not in st and st["tracing"] == "off", st
    assert run_trmtop("start", "--pid", t.pid, "--sample").rc == 0
    for args, head in ((), "tracing: this view since"), (("--sample",), "sampling: by trmtop start"):
        tmux.run_trmtop(t.pid, "--interval", INTERVAL, *args)
        tmux.wait(lambda s: loc in s and head in s, head)
        tmux.keys("q")
        tmux.wait_text("TRMTOP-EXIT=0")
        st = json.loads(run_trmtop("stats", "--pid", t.pid, "--json").out)
        assert st["sample_size"] == 512 << 10 and st["tracing"] == "off", (args, st)
    assert run_trmtop("stop", "--pid", t.pid).rc == 0
    t.ok("drip 0")
    assert t.exit() == EXIT_CODE


def test_help_and_man_page_agree():
    """The live view's options: those of `trmtop --pid PID --help` are the
    man page's synopsis of the view, both ways, and each is described in
    its OPTIONS; `trmtop --help` shows the view's usage."""
    r = subprocess.run([trmtop_path(), "--pid", "1", "--help"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    helped = set(re.findall(r"--([a-z][a-z-]+)", r.stdout)) - {"help", "usage", "version"}
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "man", "trmtop.1")) as f:
        man = f.read().replace("\\-", "-")
    synopsis = man.split(".SH SYNOPSIS", 1)[1].split(".br", 1)[0]
    assert synopsis.lstrip().startswith(".B trmtop\n.B --pid"), synopsis
    listed = set(re.findall(r"--([a-z][a-z-]+)", synopsis))
    assert helped == listed, "--help: %s; man page synopsis: %s" % (sorted(helped), sorted(listed))
    options = man.split(".SH OPTIONS", 1)[1].split(".SH ", 1)[0]
    for o in sorted(helped):
        assert re.search(r"^\.B[R]? .*--%s\b" % o, options, re.M), "--%s not in OPTIONS" % o
    top = subprocess.run([trmtop_path(), "--help"], capture_output=True, text=True, timeout=30)
    assert "trmtop --pid PID [--interval 2s]" in top.stdout, top.stdout


def test_batch_output_fails(python_faults, spawn, live):
    """Batch output into a reader that goes (`| head -1`): the view ends
    quietly with 0, like the reports; into a full device: exit 5 with the
    errno (not "Input/output error", exit 2).  Tracing is off again."""
    t = spawn(python_faults, "leaker")
    lv = live(t.pid)
    assert lv.readline().startswith("pid %d " % t.pid)
    lv.proc.stdout.close()
    err = lv.proc.stderr.read().decode(errors="replace")
    rc = lv.proc.wait(timeout=TRMTOP_TIMEOUT)
    assert rc == 0 and err == "", (rc, err)
    assert t.truth()["tracing"] is False
    with open("/dev/full", "w") as full:
        res = subprocess.run([trmtop_path(), "--pid", str(t.pid), "--batch", "--interval",
                              INTERVAL], stdin=subprocess.DEVNULL, stdout=full,
                             stderr=subprocess.PIPE, env=_env(), timeout=TRMTOP_TIMEOUT)
    err = res.stderr.decode(errors="replace")
    assert res.returncode == 5 and err == "trmtop: standard output: No space left on device\n", (
        res.returncode, err)
    assert t.truth()["tracing"] is False
    assert t.exit() == EXIT_CODE


def test_tui_unknown_terminal(python_faults, spawn, tmux):
    """A terminal that terminfo does not know, or one that cannot move its
    cursor: one line saying so, then batch text (ncurses' initscr used to
    print 'Error opening terminal' and exit 1 after the attach)."""
    t = spawn(python_faults, "native_grower")
    for term, why in (("no-such-term", "no terminfo entry for this terminal"),
                      ("dumb", "the terminal cannot move its cursor")):
        tmux.type("clear; TERM=%s %s --pid %d --iterations 1 --interval %s; echo %s-EXIT=$?"
                  % (term, os.path.abspath(trmtop_path()), t.pid, INTERVAL, term.upper()))
        tmux.keys("Enter")
        s = tmux.wait(lambda s: re.search(r"^%s-EXIT=" % term.upper(), s, re.M), "the end")
        assert "%s-EXIT=0" % term.upper() in s, s
        assert "trmtop: TERM=%s: %s: no full-screen view (--batch output)" % (term, why) in s, s
        assert re.search(r"^pid %d  .*\n^traced " % t.pid, s, re.M) and "LOCATION (by lineno)" in s, s
    assert t.truth()["tracing"] is False
    assert t.exit() == EXIT_CODE


def test_tui_ascii_locale(python_faults, spawn, tmux):
    """LANG=C: hostile names (tests/targets/hostile_names.py) drawn in
    ASCII, a '?' for each character beyond it, cut to the line (the bytes
    used to go to ncurses, which drew each as two cells, '~W', past the
    line's end onto the next row)."""
    t = spawn(python_faults, "hostile_names")
    tmux.type("clear; LANG=C LC_ALL=C %s --pid %d --interval %s; echo TRMTOP-EXIT=$?"
              % (os.path.abspath(trmtop_path()), t.pid, INTERVAL))
    tmux.keys("Enter")
    s = tmux.wait(lambda s: re.search(r"\\xff\?\?\.py:\d+$", s, re.M), "the hostile row")
    rows = table_rows(s)
    assert len(rows) >= 2 and all(re.match(r"^\s*\d+ [ !]\s+\d", r) for r in rows), s
    assert not any(c in s for c in "~\x1b"), s
    tmux.keys("q")
    tmux.wait_text("TRMTOP-EXIT=0")
    assert t.exit() == EXIT_CODE


def test_sampled_leak_suspect(python_faults, spawn, live):
    """Issue 12's leak, watched live with --sample at the default size: a
    worker with a 200 MiB heap serves requests that churn short-lived
    objects and leak 4 KiB each, 1 MiB per simulated minute (a minute is
    one 500 ms refresh: an accelerated run).  The leaking line becomes a
    leak suspect and is the first of them by growth (the L key's order);
    the view says its figures are estimates; leaving stops the sampler it
    started and the target is healthy."""
    t = spawn(python_faults, "prod_leak")
    script = t.script
    leak = marked_line(script, "LEAK-LINE")
    t.ok("heap 200")
    lv = live(t.pid, "--sample", "--interval", "500ms", "--format", "json")
    first = lv.json()
    assert first is not None, lv.wait()
    assert first["sampled"] == {"size": 512 << 10} and first["tracing"] == "view", first
    assert first["traceback_limit"] == 16, first
    t.ok("serve 500")
    deadline = time.monotonic() + TRMTOP_TIMEOUT
    while True:
        o = lv.json()
        assert o is not None, lv.wait()
        rows = [r for r in o["rows"] if r["suspect"]]
        mine = [r for r in rows if r["filename"] == script and r["lineno"] == leak]
        if mine and o["since_baseline"] >= 10:
            break
        assert time.monotonic() < deadline, "the leaking line never became a suspect: %r" % o
    by_rate = sorted(rows, key=lambda r: -r["rate_per_min"])
    assert (by_rate[0]["filename"], by_rate[0]["lineno"]) == (script, leak), by_rate
    assert mine[0]["source"] == "LEAKED.append(bytearray(LEAK_SIZE))" \
        "                                     # LEAK-LINE", mine[0]
    lv.proc.send_signal(signal.SIGINT)
    rc, err = lv.wait()
    assert rc == 130 and "sampling turned off again" in err, err
    st = json.loads(run_trmtop("stats", "--pid", t.pid, "--json").out)
    assert "sample_size" not in st and st["tracing"] == "off", st
    t.ok("serve 0")
    t.check_healthy()
    assert t.exit() == EXIT_CODE
