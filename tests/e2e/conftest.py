"""End-to-end harness for trmtop.

Run with Debian's pytest (the pyenv python3 on PATH has none):

    TRMTOP=build/src/cli/trmtop /usr/bin/python3 -m pytest -q tests/e2e

or `meson test -C build --suite e2e`.  Environment:

    TRMTOP                 the binary under test (default: build/src/cli/trmtop)
    TRMTOP_E2E_PYTHONS     comma-separated interpreter ids to restrict the run
                           to (e.g. "py3.8.18,deb3.11"); default: all found

Interpreters: every ~/.pyenv/versions/*/bin/python3 (>= 3.8 are targets,
older ones are used by the "unsupported version" tests), Debian's
/usr/bin/python3.11, and CPython 3.14 and its free-threaded build (refused)
from scripts/python314.sh, as tests/find_pythons.py finds them.  Well-known
ones that are absent are listed as skips, with the reason.  The session
fails if no supported interpreter is found.

Targets live in tests/targets/ (see _common.py there for their protocol).
Tests never sleep to synchronise: they wait on FIFOs, or poll /proc with a
deadline (wait_until).
"""

import ast
import collections
import contextlib
import functools
import glob
import json
import os
import re
import select
import subprocess
import tempfile
import time

import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TARGETS = os.path.join(REPO, "tests", "targets")
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))  # leb128
import find_pythons  # noqa: E402

# Deadlines (seconds).  They bound hangs; nothing is asserted about speed.
READY_TIMEOUT = 60.0
REPLY_TIMEOUT = 60.0
EXIT_TIMEOUT = 60.0
TRMTOP_TIMEOUT = 120.0
PROC_TIMEOUT = 10.0

EXIT_CODE = 7  # tests/targets/_common.py EXIT_CODE
MIB = 1 << 20
HELD_BYTES = 20 * MIB  # large, so that background allocation noise is small
TOLERANCE = 0.05

STAGES = ("seized", "remote", "queued", "detached", "hijack", "connected")

# ---------------------------------------------------------------------------
# Interpreters


Interp = collections.namedtuple(
    "Interp", "id path version version_str executable pie free_threaded"
)

PROBE = (
    "import sys, sysconfig\n"
    "sys.stdout.write(repr((tuple(sys.version_info[:3]), sys.version.split()[0],"
    " sys.executable, sysconfig.get_config_var('Py_GIL_DISABLED'))))\n"
)

# Well-known interpreters: listed (and skipped, with the reason
# find_pythons gives) even when absent, so that a run says what it did not
# cover.
WELL_KNOWN = (
    ("deb3.11", find_pythons.DEBIAN_311),
    ("opt3.14", find_pythons.py314()[0]),
    ("opt3.14t", find_pythons.py314t()[0]),
)
SKIP_REASON = {
    find_pythons.py314()[0]: find_pythons.py314()[1],
    find_pythons.py314t()[0]: find_pythons.py314t()[1],
}


def _is_pie(path):
    with open(path, "rb") as f:
        head = f.read(18)
    return len(head) == 18 and head[:4] == b"\x7fELF" and head[16] == 3  # ET_DYN


def _probe(ident, path):
    """Run the interpreter once; returns (Interp, None) or (None, reason)."""
    if not os.access(path, os.X_OK):
        return None, SKIP_REASON.get(path) or "%s not found" % path
    try:
        res = subprocess.run(
            [path, "-E", "-c", PROBE],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        vinfo, vstr, exe, gil_disabled = ast.literal_eval(res.stdout.decode())
    except Exception as e:  # a broken or half-built interpreter
        return None, "%s does not run: %s" % (path, e)
    exe = os.path.realpath(exe or path)
    if ident is None:
        ident = "py%d.%d.%d" % vinfo
    elif ident.startswith("opt"):
        ident = "opt%d.%d.%d%s" % (vinfo + ("t" if gil_disabled else "",))
    return (
        Interp(ident, path, vinfo, vstr, exe, _is_pie(exe), bool(gil_disabled)),
        None,
    )


@functools.lru_cache(maxsize=None)
def discover():
    """Returns (supported, unsupported, missing): two lists of Interp sorted by
    version, and a list of (id, reason, broken) for well-known ones that are
    absent (broken: the file is there but does not run: a failure, not a
    skip)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    cands = [(None, p) for p in sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python3")))]
    # python2.7 has no bin/python3
    cands += [(None, p) for p in sorted(glob.glob(os.path.join(root, "versions", "2.*", "bin", "python")))]
    cands += list(WELL_KNOWN)
    supported, unsupported, missing, seen = [], [], [], set()
    for ident, path in cands:
        interp, why = _probe(ident, path)
        if interp is None:
            missing.append((ident or path, why, os.access(path, os.X_OK)))
            continue
        if interp.executable in seen:
            continue
        seen.add(interp.executable)
        if interp.version >= (3, 8, 0) and not interp.free_threaded:
            supported.append(interp)
        else:
            unsupported.append(interp)
    only = os.environ.get("TRMTOP_E2E_PYTHONS")
    if only:
        wanted = set(only.replace(" ", "").split(","))
        supported = [i for i in supported if i.id in wanted]
        unsupported = [i for i in unsupported if i.id in wanted]
    key = lambda i: (i.version, i.id)
    return sorted(supported, key=key), sorted(unsupported, key=key), missing


def faults_subset(supported):
    """Oldest, newest and Debian's: the fault matrix runs on these only."""
    if not supported:
        return []
    chosen = [supported[0], supported[-1]] + [i for i in supported if i.id.startswith("deb")]
    out = []
    for i in chosen:
        if i not in out:
            out.append(i)
    return out


class Broken(str):
    """The parameter of a well-known interpreter that is there but does not
    run: the fixture `_no_broken_interpreter` fails its tests."""


def _params(interps, missing_ids=()):
    """Params of interps, plus one per absent well-known interpreter of
    missing_ids: a skip with the reason, or a failure when it is broken."""
    params = [pytest.param(i, id=i.id) for i in interps]
    if not os.environ.get("TRMTOP_E2E_PYTHONS"):
        for ident, why, broken in discover()[2]:
            if ident not in missing_ids:
                continue
            if broken:
                params.append(pytest.param(Broken(why), id=ident))
            else:
                params.append(pytest.param(None, id=ident, marks=pytest.mark.skip(reason=why)))
    return params


@pytest.fixture(autouse=True)
def _no_broken_interpreter(request):
    spec = getattr(request.node, "callspec", None)
    for v in (spec.params.values() if spec else ()):
        if isinstance(v, Broken):
            pytest.fail(v)


def pytest_generate_tests(metafunc):
    supported, unsupported, _ = discover()
    if "python" in metafunc.fixturenames:
        metafunc.parametrize("python", _params(supported, ("deb3.11", "opt3.14")))
    if "python_faults" in metafunc.fixturenames:
        metafunc.parametrize("python_faults", _params(faults_subset(supported)))
    if "python_cycles" in metafunc.fixturenames:
        # 100 start/stop cycles: the oldest and the newest only
        sub = supported[:1] + supported[-1:] if len(supported) > 1 else supported
        metafunc.parametrize("python_cycles", _params(sub))
    if "old_python" in metafunc.fixturenames:
        params = _params(unsupported, ("opt3.14t",))
        if not params:
            params = [pytest.param(None, id="none", marks=pytest.mark.skip(reason="no Python < 3.8 installed"))]
        metafunc.parametrize("old_python", params)


def pytest_sessionstart(session):
    supported, _, missing = discover()
    if not supported:
        pytest.exit(
            "no supported Python interpreter (3.8+) found; looked at pyenv and %s"
            % ", ".join(p for _, p in WELL_KNOWN),
            returncode=1,
        )


def pytest_report_header(config):
    supported, unsupported, missing = discover()
    lines = ["trmtop: %s" % trmtop_path()]
    lines.append("targets: " + " ".join(i.id for i in supported))
    lines.append("unsupported: " + (" ".join(i.id for i in unsupported) or "-"))
    lines.extend("missing: %s (%s)" % m[:2] for m in missing)
    return lines


# ---------------------------------------------------------------------------
# Waiting and /proc


def wait_until(pred, timeout, what):
    """Polls pred() until it returns a true value (returned) or the deadline
    passes (test failure naming `what`)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.0fs waiting for %s" % (timeout, what))
        # Back-off while polling /proc; this orders nothing, it only bounds CPU.
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def tids(pid):
    try:
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except FileNotFoundError:
        return []


def task_state(pid, tid):
    s = _read("/proc/%d/task/%d/stat" % (pid, tid))
    if s is None:
        return None
    return s[s.rindex(")") + 2]


def task_tracer(pid, tid):
    s = _read("/proc/%d/task/%d/status" % (pid, tid))
    if s is None:
        return 0
    m = re.search(r"^TracerPid:\s*(\d+)", s, re.M)
    return int(m.group(1)) if m else 0


def stopped_or_traced(pid):
    """Returns a description of every task of pid that is stopped (T/t) or
    traced, or "" when there is none."""
    bad = []
    for tid in tids(pid):
        st = task_state(pid, tid)
        tr = task_tracer(pid, tid)
        if st in ("T", "t") or tr:
            bad.append("task %d state %s TracerPid %d" % (tid, st, tr))
    return "; ".join(bad)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_links(pid):
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            pass
    return out


def thread_count(pid):
    return len(tids(pid))


def rss_bytes(pid):
    s = _read("/proc/%d/status" % pid)
    m = re.search(r"^VmRSS:\s*(\d+) kB", s, re.M)
    return int(m.group(1)) * 1024


def syscall_nr(pid, tid=None):
    s = _read("/proc/%d/task/%d/syscall" % (pid, tid or pid))
    if not s or s.startswith("running"):
        return None
    return int(s.split()[0])


def spin_flag(tmp_path):
    """The flag file of c_spin and c_spin_worker: byte 0 ends the spin,
    byte 1 says it began."""
    flag = os.path.join(str(tmp_path), "flag")
    with open(flag, "wb") as f:
        f.write(b"\0\0")
    return flag


def wait_spinning(t, flag):
    """Until t's main thread is in its C spin: it said so in the flag file
    just before entering it, and runs in user space."""
    def spinning():
        with open(flag, "rb") as f:
            began = f.read(2)[1:] == b"\1"
        return began and task_state(t.pid, t.pid) == "R" and syscall_nr(t.pid) is None
    wait_until(spinning, PROC_TIMEOUT, "the target's main thread to spin in C")


FUTEX = 202


def agent_waits_for_gil(pid):
    """A thread other than main (c_spin has no other: the agent's) blocked
    in futex: the agent waits for the GIL to answer a request."""
    return any(syscall_nr(pid, tid) == FUTEX for tid in tids(pid) if tid != pid)


def sustained(pred, n=3):
    """pred true at the last n calls of the result (a state that lasts,
    not one passed through)."""
    hist = []

    def check():
        hist.append(bool(pred()))
        return hist[-n:] == [True] * n
    return check


def end_spin(flag):
    with open(flag, "r+b") as f:
        f.write(b"\1")


@contextlib.contextmanager
def inline_target(python, code):
    """A `python -c code` process (not a tests/targets shape) that prints
    "ready" once set up: yields its Popen; afterwards it is killed, and
    what it wrote to stderr must be nothing."""
    proc = subprocess.Popen([python.path, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read()
        yield proc
    finally:
        proc.kill()
        proc.wait()
    assert proc.stderr.read() == b""


def marked_line(path, marker):
    """The number of the line of path that ends with the comment
    "# marker" (the targets mark the lines tests look for)."""
    with open(path) as f:
        for no, text in enumerate(f, 1):
            if text.rstrip().endswith("# " + marker):
                return no
    raise AssertionError("no %s in %s" % (marker, path))


def maps_libpython(pid):
    s = _read("/proc/%d/maps" % pid) or ""
    return re.search(r"/libpython3[^/\s]*\.so", s) is not None


# ---------------------------------------------------------------------------
# trmtop


def trmtop_path():
    return os.environ.get("TRMTOP") or os.path.join(REPO, "build", "src", "cli", "trmtop")


class Result(object):
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    def __repr__(self):
        return "<trmtop %s: rc=%r\n--- stdout\n%s--- stderr\n%s>" % (
            " ".join(self.argv[1:]), self.rc, self.out, self.err)

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            pytest.fail("trmtop printed no JSON (%s): %r" % (e, self))

    def error_line(self):
        """The `trmtop: <what>: <why>` line: the last stderr line before the
        optional trailing `hint:` lines (progress lines may precede it)."""
        lines = [l for l in self.err.splitlines() if l.strip()]
        while lines and lines[-1].startswith("hint:"):
            lines.pop()
        return lines[-1] if lines else ""


def check_error(res, *words):
    """Asserts the trmtop error convention: exit code 2, one
    `trmtop: <what>: <why>` line (then optional `hint:` lines), and that the
    line mentions each of `words` (case-insensitive)."""
    assert res.rc == 2, res
    line = res.error_line()
    assert re.match(r"^trmtop: .+: .+", line), res
    for w in words:
        assert w.lower() in line.lower(), "%r not in error line: %r" % (w, res)
    return line


def _env(extra=None):
    env = dict(os.environ)
    env.pop("TRMTOP_TEST_PAUSE", None)
    env.pop("TRMTOP_TEST_PAUSE_FIFO", None)
    env.update(extra or {})
    return env


def run_trmtop(*args, timeout=TRMTOP_TIMEOUT, env=None, **popen):
    argv = [trmtop_path()] + [str(a) for a in args]
    try:
        res = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(env),
            timeout=timeout,
            **popen
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail("trmtop %s did not finish within %ss (stderr: %r)" % (" ".join(argv[1:]), timeout, e.stderr))
    return Result(argv, res.returncode, res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace"))


@pytest.fixture(scope="session")
def trmtop_bin():
    path = trmtop_path()
    if not os.access(path, os.X_OK):
        pytest.fail("trmtop binary %s not found (set TRMTOP or build it)" % path)
    return path


@pytest.fixture
def trmtop(trmtop_bin):
    """trmtop(*args, timeout=..., env=...) -> Result(rc, out, err)."""
    return run_trmtop


def stats(pid, ok=True):
    res = run_trmtop("stats", "--pid", pid, "--json")
    if ok:
        assert res.rc == 0, res
        return res.json()
    return res


class Paused(object):
    """A trmtop run with TRMTOP_TEST_PAUSE=stage.  After construction either
    `line` holds the stage line (trmtop is blocked at the pause) or
    `result` holds the outcome of trmtop finishing without reaching it."""

    def __init__(self, args, stage, tmpdir, timeout=TRMTOP_TIMEOUT):
        self.stage = stage
        self.line = None
        self.result = None
        fifo = os.path.join(tmpdir, "pause-%s-%d" % (stage, time.monotonic_ns()))
        os.mkfifo(fifo)
        # O_RDWR: our open never blocks and trmtop's open for writing neither.
        fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self.out = tempfile.TemporaryFile(dir=tmpdir)
        self.err = tempfile.TemporaryFile(dir=tmpdir)
        self.argv = [trmtop_path()] + [str(a) for a in args]
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self.out,
            stderr=self.err,
            env=_env({"TRMTOP_TEST_PAUSE": stage, "TRMTOP_TEST_PAUSE_FIFO": fifo}),
        )
        buf = b""
        deadline = time.monotonic() + timeout
        try:
            while b"\n" not in buf:
                r, _, _ = select.select([fd], [], [], 0.05)
                if r:
                    try:
                        buf += os.read(fd, 256)
                    except BlockingIOError:
                        pass
                    continue
                if self.proc.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    self.proc.kill()
                    self.proc.wait()
                    pytest.fail("trmtop neither paused at %s nor finished within %ss: %r"
                                % (stage, timeout, self._result()))
        finally:
            os.close(fd)
            os.unlink(fifo)
        if b"\n" in buf:
            self.line = buf.split(b"\n", 1)[0].decode(errors="replace")
            assert self.line == stage, "pause FIFO said %r, expected %r" % (self.line, stage)
        else:
            self.result = self._result()

    def _result(self):
        rc = self.proc.wait(timeout=EXIT_TIMEOUT)
        self.out.seek(0)
        self.err.seek(0)
        return Result(self.argv, rc, self.out.read().decode(errors="replace"),
                      self.err.read().decode(errors="replace"))

    @property
    def paused(self):
        return self.line is not None

    def kill(self, sig):
        """Sends sig to the paused trmtop and waits for it to end."""
        assert self.paused
        self.proc.send_signal(sig)
        try:
            self.result = self._result()
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("trmtop did not end within %ss of signal %d at stage %s"
                        % (EXIT_TIMEOUT, sig, self.stage))
        return self.result


# ---------------------------------------------------------------------------
# Targets


class TargetDied(AssertionError):
    pass


def target_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Target(object):
    """One target process (tests/targets/<shape>.py) under one interpreter.

    t = Target(python, "cpu_loop", tmpdir).start()
    t.cmd("alloc 1000") == "ok";  t.truth() -> dict;  t.exit() -> exit code
    t.output (report bytes), t.stdout, t.stderr after exit.
    """

    def __init__(self, python, shape, tmpdir, args=(), pass_fds=(), script=None,
                 pyflags=()):
        self.python = python
        self.shape = shape
        self.dir = tempfile.mkdtemp(prefix=shape + "-", dir=tmpdir)
        self.script = script or os.path.join(TARGETS, shape + ".py")
        self.args = [str(a) for a in args]
        self.pass_fds = tuple(pass_fds)
        self.pyflags = list(pyflags)  # more interpreter options, e.g. -S
        self.proc = None
        self.info = {}
        self.exit_requested = False
        self.may_die = False  # set by tests that kill the target on purpose
        self.output = self.stdout = self.stderr = None
        self.rc = None
        self._buf = b""

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=READY_TIMEOUT):
        d = self.dir
        self.reply_path = os.path.join(d, "reply")
        self.ctl_path = os.path.join(d, "ctl")
        self.out_path = os.path.join(d, "out")
        os.mkfifo(self.reply_path)
        os.mkfifo(self.ctl_path)
        # Opened before the target: its opens never block.  The reply FIFO's
        # read end is ours alone, so the target's death reads as EOF; the
        # control FIFO is held read-write, so the target never sees EOF.
        self.reply_fd = os.open(self.reply_path, os.O_RDONLY | os.O_NONBLOCK)
        self.ctl_fd = os.open(self.ctl_path, os.O_RDWR)
        self._stdout = open(os.path.join(d, "stdout"), "w+b")
        self._stderr = open(os.path.join(d, "stderr"), "w+b")
        argv = [self.python.path, "-E", "-B"] + self.pyflags + [
            self.script, self.reply_path, self.ctl_path, self.out_path]
        self.proc = subprocess.Popen(
            argv + self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            pass_fds=self.pass_fds,
            env=target_env(),
            cwd=d,
        )
        line = self.readline(timeout, "ready")
        word, _, rest = line.partition(" ")
        if word != "ready":
            pytest.fail("target %s said %r instead of ready" % (self.shape, line))
        self.info = json.loads(rest) if rest else {}
        return self

    def _diag(self):
        rc = self.proc.poll()
        self._stderr.flush()
        with open(self._stderr.name, "rb") as f:
            err = f.read().decode(errors="replace")
        return "%s pid %d (%s) rc=%r stderr=%r" % (self.shape, self.proc.pid, self.python.id, rc, err[-2000:])

    def readline(self, timeout=REPLY_TIMEOUT, what="a reply"):
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail("timed out waiting for %s from target %s" % (what, self._diag()))
            r, _, _ = select.select([self.reply_fd], [], [], min(left, 0.2))
            if not r:
                if self.proc.poll() is not None:
                    # drain what it wrote before dying
                    try:
                        data = os.read(self.reply_fd, 65536)
                    except BlockingIOError:
                        data = b""
                    if data:
                        self._buf += data
                        continue
                    raise TargetDied("target died waiting for %s: %s" % (what, self._diag()))
                continue
            try:
                data = os.read(self.reply_fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                if self.proc.poll() is None and not self.exit_requested:
                    # Writer closed but the process lives: wait for it to end.
                    try:
                        self.proc.wait(timeout=PROC_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        pass
                raise TargetDied("target closed its reply FIFO waiting for %s: %s" % (what, self._diag()))
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def send(self, line):
        os.write(self.ctl_fd, (line + "\n").encode())

    def cmd(self, line, timeout=REPLY_TIMEOUT):
        self.send(line)
        return self.readline(timeout, repr(line))

    def ok(self, line, timeout=REPLY_TIMEOUT):
        ans = self.cmd(line, timeout)
        assert ans == "ok", "target %s answered %r to %r" % (self.shape, ans, line)

    def truth(self):
        return json.loads(self.cmd("truth"))

    def progress(self):
        return json.loads(self.cmd("progress"))

    def alive(self):
        return self.proc.poll() is None

    def check_healthy(self, timeout=2.0):
        """Alive, no task stopped or traced.  A short deadline absorbs the
        kernel finishing a detach; a target left stopped stays stopped."""
        assert self.alive(), "target died: %s" % self._diag()
        bad = [None]

        def ok():
            bad[0] = stopped_or_traced(self.pid)
            return not bad[0]

        deadline = time.monotonic() + timeout
        while not ok():
            if time.monotonic() > deadline:
                pytest.fail("target %s left stopped or traced: %s" % (self._diag(), bad[0]))
            time.sleep(0.005)
        assert self.alive(), "target died: %s" % self._diag()

    def check_progress(self):
        """The target's main loop (or its workers) still makes progress."""
        first = self.progress()["work"]
        wait_until(lambda: self.progress()["work"] > first, PROC_TIMEOUT,
                   "target %s to make progress" % self.shape)

    def exit(self, timeout=EXIT_TIMEOUT):
        """Asks the target to finish; returns its exit code and collects its
        report (self.output) and stdout/stderr."""
        self.exit_requested = True
        ans = self.cmd("exit")
        assert ans == "bye", "target %s answered %r to exit" % (self.shape, ans)
        return self.wait(timeout)

    def wait(self, timeout=EXIT_TIMEOUT):
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("target did not exit within %ss: %s" % (timeout, self._diag()))
        self.close()
        return self.rc

    def close(self):
        for f in (self._stdout, self._stderr):
            f.flush()
        with open(self._stdout.name, "rb") as f:
            self.stdout = f.read()
        with open(self._stderr.name, "rb") as f:
            self.stderr = f.read()
        try:
            with open(self.out_path, "rb") as f:
                self.output = f.read()
        except FileNotFoundError:
            self.output = None
        for fd in (self.reply_fd, self.ctl_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.reply_fd = self.ctl_fd = -1
        self._stdout.close()
        self._stderr.close()

    def kill(self):
        self.may_die = True
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=EXIT_TIMEOUT)
        self.close()

    def outcome(self):
        """What a test compares with an unattached run."""
        return {"rc": self.rc, "output": self.output, "stdout": self.stdout, "stderr": self.stderr}


@pytest.fixture
def spawn(tmp_path):
    """spawn(python, shape, args=(), pass_fds=(), pyflags=()) -> started Target.

    Teardown checks every target it started: one still running must not be
    stopped or traced (then it is killed); one that ended must have been
    told to (exit) or be marked may_die."""
    started = []

    def _spawn(python, shape, args=(), pass_fds=(), start=True, script=None, pyflags=()):
        t = Target(python, shape, str(tmp_path), args, pass_fds, script, pyflags)
        started.append(t)
        return t.start() if start else t

    yield _spawn
    problems = []
    for t in started:
        if t.proc is None:
            continue
        if t.alive():
            bad = stopped_or_traced(t.pid)
            if bad:
                problems.append("%s (%s) left stopped or traced: %s" % (t.shape, t.python.id, bad))
                # SIGKILL works on stopped and traced tasks alike
            t.proc.kill()
            t.proc.wait(timeout=EXIT_TIMEOUT)
            t.close()
            if not t.exit_requested and not t.may_die:
                pass  # still alive at the end of the test: fine
        else:
            rc = t.proc.returncode
            if not t.exit_requested and not t.may_die:
                problems.append("%s (%s) died unexpectedly, rc %r: %s" % (t.shape, t.python.id, rc, t._diag()))
            if t.reply_fd != -1:
                t.close()
    if problems:
        pytest.fail("\n".join(problems))


_baselines = {}


def baseline(python, shape, tmpdir):
    """Outcome of an unattached run of a shape whose report does not depend on
    what the test feeds it (cached per interpreter and shape)."""
    key = (python.id, shape)
    if key not in _baselines:
        t = Target(python, shape, tmpdir).start()
        try:
            t.ok("alloc %d" % MIB)
            t.truth()
            t.ok("free")
            t.exit()
        finally:
            if t.alive():
                t.kill()
        _baselines[key] = t.outcome()
    return _baselines[key]


def assert_same_outcome(t, base):
    assert t.rc == EXIT_CODE, "exit code %r, stderr %r" % (t.rc, t.stderr)
    assert t.stderr == b"", "target wrote to stderr: %r" % t.stderr
    assert t.outcome() == base


def assert_close(got, truth, what="traced_current"):
    assert truth > 0
    assert abs(got - truth) <= TOLERANCE * truth, (
        "%s %d vs tracemalloc's own %d: off by %.1f%% (> %.0f%%)"
        % (what, got, truth, 100.0 * abs(got - truth) / truth, 100 * TOLERANCE))
