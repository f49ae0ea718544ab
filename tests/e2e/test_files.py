"""The files trmtop reads and writes as root, for and against other users.

Source lines: a target chooses the file names of its code, and trmtop
(usually root) stores the lines of those files in a .trm its owner reads.
They must be read with the target's own credentials, inside its own root:
a name, a relative path or a symlink that leads to a file the target
cannot read gets no line.  The tests run the `sources` target
(tests/targets/sources.py) under Debian's /usr/bin/python3.11 (pyenv's
interpreters live under /root, where other users cannot run them) as a
throwaway user, or as root chrooted in a private mount namespace.

Outputs: one atomic writer that never follows a symlink and never replaces
a device, FIFO or directory; the user's umask is kept and a file holding
source lines is 0600; a failed write leaves the previous file as it was
and says why ("No space left on device"), exit status 5.  A --duration
snapshot checks its output before it does anything to the target.
Inputs: a FIFO is refused (exit 4), never waited on.

Most tests need root (a user, a tmpfs, mknod, chroot): CI runs as root.
"""
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import uuid

import pytest

from conftest import (EXIT_CODE, EXIT_TIMEOUT, READY_TIMEOUT, REPO, TARGETS, Target, _probe,
                      run_trmtop, stopped_or_traced, target_env, trmtop_path)
import find_pythons

SECRET = "TRMTOP-SECRET"      # in files the target must not get lines of
READABLE = "TRMTOP-READABLE"  # in files it may read
GEN_LINE = 3                  # tests/targets/sources.py GEN_LINE
EXIT_BADINPUT = 4
EXIT_WRITE = 5
FIXTURES = os.path.join(REPO, "tests", "fixtures", "tracemalloc")
SMALL_DUMP = os.path.join(FIXTURES, "3.11-debian.pickle")
TRM_WITH_SOURCES = os.path.join(REPO, "tests", "fuzz", "corpus", "trm", "domains-source.trm")
UP = "../" * 16  # more than enough to climb to / from any test directory

# The chroot of a root target: a private mount namespace (nothing to clean
# up on the host), /usr read-only and /proc mounted inside the new root.
CHROOT_SH = """set -e
root=$1; shift
mount -o bind,ro /usr "$root/usr"
mount -t proc proc "$root/proc"
exec chroot "$root" "$@"
"""


def needs_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (CI runs as root): creates users, mounts, device nodes")


def lines_of(marker, tag):
    """Five lines; line GEN_LINE reads "<marker> <tag> line 3"."""
    return "".join("%s %s line %d\n" % (marker, tag, i) for i in range(1, 6))


def expected_line(marker, tag):
    return "%s %s line %d" % (marker, tag, GEN_LINE)


def write_file(path, text, mode, uid=0, gid=0):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def mkdir(path, mode=0o755, uid=0, gid=0):
    os.mkdir(path)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def error_line(res):
    lines = [l for l in res.err.splitlines() if l.strip() and not l.startswith("hint:")]
    assert lines, res
    assert lines[-1].startswith("trmtop: "), res
    return lines[-1]


def check_write_error(res, *words):
    assert res.rc == EXIT_WRITE, res
    line = error_line(res)
    for w in words:
        assert w in line, "%r not in %r" % (w, res)
    return line


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def base():
    """A directory every user can traverse (pytest's tmp_path is root's
    0700), removed at the end."""
    d = tempfile.mkdtemp(prefix="trmtop-files-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class User(object):
    def __init__(self, name, uid, gid, extra_group, extra_gid):
        self.name, self.uid, self.gid = name, uid, gid
        self.extra_group, self.extra_gid = extra_group, extra_gid


@pytest.fixture
def user():
    """A throwaway system user (with its own group) and a second group it
    is given as a supplementary one; both removed at the end."""
    needs_root()
    name = "trmtop-t%s" % uuid.uuid4().hex[:8]
    extra = name + "-g"
    made = []
    try:
        subprocess.run(["groupadd", "--system", extra], check=True, capture_output=True)
        made.append(("groupdel", extra))
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        made.append(("userdel", name))
        pw = pwd.getpwnam(name)
        yield User(name, pw.pw_uid, pw.pw_gid, extra, grp.getgrnam(extra).gr_gid)
    finally:
        for cmd, arg in reversed(made):
            subprocess.run([cmd, arg], capture_output=True)


@pytest.fixture(scope="module")
def debian():
    interp, why = _probe("deb3.11", find_pythons.DEBIAN_311)
    if interp is None:
        pytest.skip(why)
    return interp


class FilesTarget(Target):
    """The `sources` target run as another user (user: a User, with its
    extra group as the only supplementary one), or as root chrooted into
    root (a host path; the target's directory and script must be inside
    it, and are passed to it as paths inside it), or under a command
    (wrap: argv prefix)."""

    def __init__(self, python, tmpdir, args=(), user=None, root=None, script=None, wrap=()):
        Target.__init__(self, python, "sources", tmpdir, args, script=script)
        self.user = user
        self.root = root
        self.wrap = list(wrap)  # argv prefix (e.g. setpriv ...)

    def inside(self, path):
        if not self.root:
            return path
        assert path.startswith(self.root + "/"), path
        return path[len(self.root):]

    def start(self, timeout=READY_TIMEOUT):
        d = self.dir
        self.reply_path = os.path.join(d, "reply")
        self.ctl_path = os.path.join(d, "ctl")
        self.out_path = os.path.join(d, "out")
        os.mkfifo(self.reply_path, 0o600)
        os.mkfifo(self.ctl_path, 0o600)
        os.chmod(d, 0o755)
        if self.user:
            for p in (d, self.reply_path, self.ctl_path):
                os.chown(p, self.user.uid, self.user.gid)
        self.reply_fd = os.open(self.reply_path, os.O_RDONLY | os.O_NONBLOCK)
        self.ctl_fd = os.open(self.ctl_path, os.O_RDWR)
        self._stdout = open(os.path.join(d, "stdout"), "w+b")
        self._stderr = open(os.path.join(d, "stderr"), "w+b")
        argv = [self.python.path, "-E", "-B", self.inside(self.script), self.inside(self.reply_path),
                self.inside(self.ctl_path), self.inside(self.out_path)] + self.args
        argv = self.wrap + argv
        popen = {}
        if self.root:
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", CHROOT_SH, "sh",
                    self.root] + argv
        if self.user:
            popen = dict(user=self.user.uid, group=self.user.gid, extra_groups=[self.user.extra_gid])
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stdout,
                                     stderr=self._stderr, env=target_env(), cwd=d, **popen)
        line = self.readline(timeout, "ready")
        if line != "ready":
            pytest.fail("target %s said %r instead of ready" % (self.shape, line))
        return self


@pytest.fixture
def targets():
    """A list to append FilesTargets to; each is checked (not left stopped
    or traced) and killed at the end."""
    started = []
    yield started
    problems = []
    for t in started:
        if t.proc is None or not t.alive():
            continue
        bad = stopped_or_traced(t.pid)
        if bad:
            problems.append("target left stopped or traced: %s" % bad)
        t.proc.kill()
        t.proc.wait(timeout=EXIT_TIMEOUT)
        t.close()
    if problems:
        pytest.fail("\n".join(problems))


def compile_all(t, names):
    """Has t compile each name, with sizes that keep them all among the top
    locations."""
    for i, name in enumerate(names):
        t.ok("compile %s %d" % (name, (i + 2) << 19))


def snapshot_and_check(t, trm, want, env=None):
    """Snapshots t with source lines; want maps each compiled name to the
    line expected for NAME:GEN_LINE (None: no line).  Checks the .trm, top
    (text and JSON) and traceback, and that nothing of SECRET shows."""
    res = run_trmtop("snapshot", "--pid", t.pid, "-o", trm, env=env)
    assert res.rc == 0, res
    js = run_trmtop("top", trm, "--limit", "0", "--format", "json")
    assert js.rc == 0, js
    got = {}
    for st in js.json()["stats"]:
        fr = st["frames"][0]
        if fr["lineno"] == GEN_LINE and fr["filename"] in want:
            got[fr["filename"]] = fr.get("source")
    assert got == want, "source lines stored (name: line):\n%s\nexpected:\n%s" % (
        json.dumps(got, indent=1), json.dumps(want, indent=1))
    with open(trm, "rb") as f:
        assert SECRET.encode() not in f.read(), "a line the target cannot read is in the .trm"
    top = run_trmtop("top", trm, "--limit", "0")
    assert top.rc == 0, top
    assert SECRET not in top.out, top
    for name, line in want.items():
        tb = run_trmtop("traceback", trm, "--location", "%s:%d" % (name, GEN_LINE))
        assert tb.rc == 0, tb
        assert SECRET not in tb.out, tb
        if line:
            assert line in tb.out, tb
    return res


# ---------------------------------------------------------------------------
# Source lines


@pytest.mark.parametrize("resolve", ["openat2", "walk"])
def test_sources_with_the_target_users_rights(debian, user, base, targets, resolve):
    """A target owned by an unprivileged user gets no line of a root-only
    file however it names it (absolute, ../.., a symlink it planted), and
    of no file its groups deny; it does get the lines of files it can
    read, through its supplementary group too.  `walk` is the resolution
    used without openat2 (symlinks refused)."""
    secret_dir = mkdir(os.path.join(base, "root-only"))
    secret = write_file(os.path.join(secret_dir, "secret.py"), lines_of(SECRET, "root-only"), 0o600)
    pub_dir = mkdir(os.path.join(base, "pub"))
    public = write_file(os.path.join(pub_dir, "public.py"), lines_of(READABLE, "public"), 0o644)
    in_group = write_file(os.path.join(pub_dir, "group.py"), lines_of(READABLE, "group"), 0o640,
                          gid=user.extra_gid)
    # readable by others, not by the group: the target's group denies it
    group_denied = write_file(os.path.join(pub_dir, "group-denied.py"),
                              lines_of(SECRET, "group-denied"), 0o604, gid=user.extra_gid)
    home = mkdir(os.path.join(base, "home"), 0o755, user.uid, user.gid)
    link = os.path.join(home, "link.py")
    os.symlink(secret, link)
    os.lchown(link, user.uid, user.gid)
    link_public = os.path.join(home, "link-public.py")
    os.symlink(public, link_public)
    os.lchown(link_public, user.uid, user.gid)
    fifo = os.path.join(home, "fifo.py")
    os.mkfifo(fifo)
    os.chown(fifo, user.uid, user.gid)

    want = {
        secret: None,
        UP + secret.lstrip("/"): None,   # relative, from its cwd
        link: None,
        group_denied: None,
        fifo: None,
        public: expected_line(READABLE, "public"),
        in_group: expected_line(READABLE, "group"),
        "../pub/public.py": expected_line(READABLE, "public"),
        link_public: expected_line(READABLE, "public") if resolve == "openat2" else None,
    }
    t = FilesTarget(debian, home, args=[home], user=user)
    targets.append(t)
    t.start()
    assert os.stat("/proc/%d" % t.pid).st_uid == user.uid
    compile_all(t, list(want))
    trm = os.path.join(base, "app.trm")
    env = {"TRMTOP_TEST_NO_OPENAT2": "1"} if resolve == "walk" else None
    old = os.umask(0o022)
    try:
        snapshot_and_check(t, trm, want, env)
    finally:
        os.umask(old)
    # it holds source lines: root's only, whatever the umask allowed
    assert stat.S_IMODE(os.stat(trm).st_mode) == 0o600, oct(os.stat(trm).st_mode)
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.stderr == b"", t.stderr


@pytest.mark.parametrize("resolve", ["openat2", "walk"])
def test_sources_inside_the_target_root(debian, base, targets, resolve):
    """A root target chrooted into a directory: its credentials let it read
    anything, so only resolution inside its root keeps the host's files
    out: ../.. from its cwd, absolute and relative symlinks out of the root,
    and /proc/self/root (trmtop's own root, seen from the reader) get no
    line; its own files do."""
    needs_root()
    host_dir = mkdir(os.path.join(base, "host-only"), 0o700)
    host_secret = write_file(os.path.join(host_dir, "secret.py"), lines_of(SECRET, "host"), 0o600)
    root = mkdir(os.path.join(base, "root"))
    for d in ("usr", "proc", "app", "work", "targets"):
        mkdir(os.path.join(root, d))
    for name, to in (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")):
        os.symlink(to, os.path.join(root, name))
    for f in ("sources.py", "_common.py"):
        shutil.copy(os.path.join(TARGETS, f), os.path.join(root, "targets", f))
    write_file(os.path.join(root, "app", "mod.py"), lines_of(READABLE, "chroot"), 0o644)
    os.symlink(host_secret, os.path.join(root, "app", "abs-link.py"))
    os.symlink(UP + host_secret.lstrip("/"), os.path.join(root, "app", "up-link.py"))

    want = {
        UP + host_secret.lstrip("/"): None,       # relative, from /app
        "/app/abs-link.py": None,
        "/app/up-link.py": None,
        "/proc/self/root" + host_secret: None,
        host_secret: None,                       # no such file inside
        "/app/mod.py": expected_line(READABLE, "chroot"),
        "mod.py": expected_line(READABLE, "chroot"),
    }
    t = FilesTarget(debian, os.path.join(root, "work"), args=["/app"], root=root,
                    script=os.path.join(root, "targets", "sources.py"))
    targets.append(t)
    t.start()
    assert os.readlink("/proc/%d/root" % t.pid) != "/"
    compile_all(t, list(want))
    env = {"TRMTOP_TEST_NO_OPENAT2": "1"} if resolve == "walk" else None
    snapshot_and_check(t, os.path.join(base, "chroot.trm"), want, env)
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.stderr == b"", t.stderr


def test_sources_root_target_without_dac_caps(debian, base, targets):
    """A root target whose capabilities exclude CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH cannot read another user's 0600 file: the reader
    keeps no capability the target lacks, so neither can it.  Root's own
    0600 file it can read."""
    needs_root()
    d = mkdir(os.path.join(base, "files"))
    other = write_file(os.path.join(d, "other-user.py"), lines_of(SECRET, "uid-54321"), 0o600,
                       uid=54321, gid=54321)
    own = write_file(os.path.join(d, "root-own.py"), lines_of(READABLE, "root-own"), 0o600)
    want = {other: None, own: expected_line(READABLE, "root-own")}
    wd = mkdir(os.path.join(base, "work"))
    t = FilesTarget(debian, wd, wrap=["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
                                      "--inh-caps", "-all"])
    targets.append(t)
    t.start()
    with open("/proc/%d/status" % t.pid) as f:
        cap_eff = int([l for l in f if l.startswith("CapEff:")][0].split()[1], 16)
    assert cap_eff and not cap_eff & ((1 << 1) | (1 << 2)), hex(cap_eff)  # DAC_OVERRIDE, DAC_READ_SEARCH
    compile_all(t, list(want))
    snapshot_and_check(t, os.path.join(base, "caps.trm"), want)
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    assert t.stderr == b"", t.stderr


# ---------------------------------------------------------------------------
# Outputs


def listing(d):
    return sorted(os.listdir(d))


def test_output_not_through_symlinks(tmp_path):
    """-o onto a symlink to a root 0600 file: refused; the file, the link
    and the directory stay as they were."""
    d = str(tmp_path)
    victim = write_file(os.path.join(d, "victim"), "precious\n", 0o600)
    link = os.path.join(d, "out")
    os.symlink(victim, link)
    before = listing(d)
    for args in (["import", SMALL_DUMP, "-o", link],
                 ["import", TRM_WITH_SOURCES, "-o", link],
                 ["export", SMALL_DUMP, "--to", "json", "-o", link],
                 ["export", SMALL_DUMP, "--to", "tracemalloc", "-o", link],
                 ["export", SMALL_DUMP, "--to", "collapsed", "-o", link]):
        res = run_trmtop(*args)
        check_write_error(res, link, "symbolic link")
        with open(victim) as f:
            assert f.read() == "precious\n", args
        assert stat.S_IMODE(os.stat(victim).st_mode) == 0o600
        assert os.readlink(link) == victim, args
        assert listing(d) == before, args


def test_output_not_over_devices_fifos_directories(tmp_path):
    """-o onto a character device (a node like /dev/full, made here: the
    real one is not put at risk), a FIFO or a directory: refused, exit 5,
    and each is still what it was; a missing directory says so."""
    needs_root()
    d = str(tmp_path)
    full = os.path.join(d, "full")
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    sub = os.path.join(d, "dir")
    os.mkdir(sub)
    before = listing(d)
    for out, kind in ((full, "character device"), (fifo, "FIFO"), (sub, "directory")):
        for args in (["import", SMALL_DUMP, "-o", out],
                     ["export", SMALL_DUMP, "--to", "json", "-o", out]):
            res = run_trmtop(*args, timeout=60)
            check_write_error(res, out, kind)
        assert listing(d) == before
    st = os.lstat(full)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 7)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(sub) == []
    res = run_trmtop("import", SMALL_DUMP, "-o", os.path.join(d, "missing", "x.trm"))
    check_write_error(res, "missing", "No such file or directory")
    assert listing(d) == before


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077, 0o027])
def test_output_mode(tmp_path, umask):
    """The umask is kept; a file holding source lines is 0600 (less the
    umask), whoever could read the directory."""
    d = str(tmp_path)
    cases = (
        (["import", SMALL_DUMP, "-o"], "plain.trm", 0o666),
        (["export", SMALL_DUMP, "--to", "json", "-o"], "plain.json", 0o666),
        (["import", TRM_WITH_SOURCES, "-o"], "sources.trm", 0o600),
        (["export", TRM_WITH_SOURCES, "--to", "json", "-o"], "sources.json", 0o600),
        (["export", TRM_WITH_SOURCES, "--to", "tracemalloc", "-o"], "sources.pickle", 0o666),
    )
    for args, name, mode in cases:
        out = os.path.join(d, name)
        res = run_trmtop(*(args + [out]), preexec_fn=lambda: os.umask(umask))
        assert res.rc == 0, res
        got = stat.S_IMODE(os.stat(out).st_mode)
        assert got == mode & ~umask, "%s: mode %o, expected %o" % (name, got, mode & ~umask)
    with open(os.path.join(d, "sources.json")) as f:
        assert '"source": ' in f.read()  # the case is what it says
    assert listing(d) == sorted(c[1] for c in cases)


BIG_DUMP_HELPER = r"""
import sys, tracemalloc
tracemalloc.start(1)
src = "".join("kept.append(bytearray(%d))\n" % (64 + i) for i in range(12000))
kept = []
exec(compile(src, "/trmtop-test/a-generated-module-with-many-lines.py", "exec"), {"kept": kept})
tracemalloc.take_snapshot().dump(sys.argv[1])
"""


@pytest.fixture
def big_dump(tmp_path):
    """A tracemalloc dump whose .trm and JSON are larger than 64 KiB."""
    path = str(tmp_path / "big.pickle")
    subprocess.run(["/usr/bin/python3", "-E", "-c", BIG_DUMP_HELPER, path], check=True, timeout=120)
    return path


@pytest.fixture
def small_fs(tmp_path):
    """A 64 KiB tmpfs, unmounted at the end."""
    needs_root()
    d = str(tmp_path / "small")
    os.mkdir(d)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", d], check=True)
    yield d
    subprocess.run(["umount", d], check=True)


def test_full_disk_keeps_the_previous_file(tmp_path, big_dump, small_fs):
    """A write that runs out of space: the previous good file is intact,
    no temporary file is left, and the message is the errno's."""
    for args in (["import", big_dump, "-o"], ["export", big_dump, "--to", "json", "-o"],
                 ["export", big_dump, "--to", "tracemalloc", "-o"]):
        res = run_trmtop(*(args + [str(tmp_path / "size-check")]))
        assert res.rc == 0, res
        assert os.path.getsize(str(tmp_path / "size-check")) > 64 << 10, args
    good = {}
    for args, name in ((["import", SMALL_DUMP, "-o"], "out.trm"),
                       (["export", SMALL_DUMP, "--to", "json", "-o"], "out.json"),
                       (["export", SMALL_DUMP, "--to", "tracemalloc", "-o"], "out.pickle")):
        out = os.path.join(small_fs, name)
        assert run_trmtop(*(args + [out])).rc == 0
        with open(out, "rb") as f:
            good[name] = f.read()
    for args, name in ((["import", big_dump, "-o"], "out.trm"),
                       (["export", big_dump, "--to", "json", "-o"], "out.json"),
                       (["export", big_dump, "--to", "tracemalloc", "-o"], "out.pickle")):
        out = os.path.join(small_fs, name)
        res = run_trmtop(*(args + [out]))
        check_write_error(res, out, "No space left on device")
        assert listing(small_fs) == sorted(good), (args, listing(small_fs))
        for n, data in good.items():
            with open(os.path.join(small_fs, n), "rb") as f:
                assert f.read() == data, "%s changed by a failed write of %s" % (n, name)
    # the good one still reads
    assert run_trmtop("top", os.path.join(small_fs, "out.trm")).rc == 0


def test_report_to_a_full_stdout(big_dump):
    """A report that cannot be written to standard output: exit 5 and the
    errno, not the target-error code, whatever the command and format."""
    for args in (["top", big_dump, "--limit", "0"], ["export", big_dump, "--to", "json"],
                 ["diff", big_dump, big_dump, "--limit", "0"],
                 ["top", big_dump, "--limit", "0", "--format", "json"],
                 ["top", big_dump, "--format", "collapsed"],
                 ["diff", big_dump, big_dump, "--limit", "0", "--format", "json"],
                 ["traceback", big_dump], ["traceback", big_dump, "--format", "json"],
                 ["export", big_dump, "--to", "collapsed"],
                 ["export", big_dump, "--to", "tracemalloc"]):
        with open("/dev/full", "w") as full:
            r = subprocess.run([trmtop_path()] + args, stdin=subprocess.DEVNULL, stdout=full,
                               stderr=subprocess.PIPE, timeout=120)
        err = r.stderr.decode(errors="replace")
        assert r.returncode == EXIT_WRITE, (args, r.returncode, err)
        # (traceback's note on a 1-frame snapshot may come first)
        lines = [l for l in err.splitlines() if not l.startswith("note: ")]
        assert lines and lines[0].startswith("trmtop: ") and \
            "No space left on device" in lines[0], (args, err)


def test_write_errors_are_exit_5(tmp_path):
    """Every -o that cannot be written (its directory missing, a directory
    in its place): exit 5 with the reason, never the target-error code 2."""
    missing = str(tmp_path / "no" / "such" / "out")
    for args in (["import", SMALL_DUMP, "-o", missing],
                 ["export", SMALL_DUMP, "--to", "json", "-o", missing],
                 ["export", SMALL_DUMP, "--to", "collapsed", "-o", missing],
                 ["export", SMALL_DUMP, "--to", "tracemalloc", "-o", missing]):
        check_write_error(run_trmtop(*args), missing)
    for args in (["import", SMALL_DUMP, "-o", str(tmp_path)],
                 ["export", SMALL_DUMP, "--to", "json", "-o", str(tmp_path)]):
        check_write_error(run_trmtop(*args), str(tmp_path), "not a regular file")


def test_fifo_as_input(tmp_path):
    """A FIFO given as an input file: refused at once (no writer ever comes),
    exit 4."""
    fifo = str(tmp_path / "in.trm")
    os.mkfifo(fifo)
    good = str(tmp_path / "good.trm")
    assert run_trmtop("import", SMALL_DUMP, "-o", good).rc == 0
    for args in (["top", fifo], ["traceback", fifo], ["diff", good, fifo],
                 ["export", fifo, "--to", "json"], ["import", fifo, "-o", str(tmp_path / "x.trm")]):
        res = run_trmtop(*args, timeout=30)
        assert res.rc == EXIT_BADINPUT, res
        line = error_line(res)
        assert fifo in line and "not a regular file" in line, res
    assert not os.path.exists(str(tmp_path / "x.trm"))


def test_exit_status_5_documented():
    r = subprocess.run([trmtop_path(), "--help"], capture_output=True, text=True, timeout=30)
    assert "5 an output could not be written" in r.stdout, r.stdout
    with open(os.path.join(REPO, "man", "trmtop.1")) as f:
        man = f.read()
    assert "\n.B 5\n" in man
    with open(os.path.join(REPO, "README.md")) as f:
        assert "5 an output could not be written" in f.read()


# ---------------------------------------------------------------------------
# A --duration snapshot checks its output first


def test_duration_snapshot_checks_output_first(python, spawn, tmp_path):
    """snapshot --duration with an output it cannot write fails at once,
    before attaching: tracing stays off and no agent is loaded (--duration
    1h --keep-tracing would otherwise trace for an hour, then fail and
    leave tracing on)."""
    needs_root()
    d = str(tmp_path)
    dev = os.path.join(d, "full")
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    ro = os.path.join(d, "ro")
    os.mkdir(ro)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", ro], check=True)
    try:
        t = spawn(python, "leaker")
        assert t.truth()["tracing"] is False
        for out, why in ((os.path.join(d, "missing", "x.trm"), "No such file or directory"),
                         (dev, "character device"),
                         (os.path.join(ro, "x.trm"), "Read-only file system")):
            res = run_trmtop("snapshot", "--pid", t.pid, "--duration", "1h", "--keep-tracing",
                             "-o", out, timeout=60)
            check_write_error(res, out, why)
            assert t.truth()["tracing"] is False, "tracing changed by a snapshot that could not write"
            with open("/proc/%d/maps" % t.pid) as f:
                assert "memfd:trmtop" not in f.read(), "the agent was loaded"
        assert stat.S_ISCHR(os.lstat(dev).st_mode)
        t.check_healthy()
        assert t.exit() == EXIT_CODE
    finally:
        subprocess.run(["umount", ro], check=True)


# ---------------------------------------------------------------------------
# The target's fds that trmtop takes for itself


SWAPPER = r'''
import os, sys, threading
# Every new pipe or trmtop memfd of this process is replaced, as soon as it
# shows, by an O_PATH descriptor of a file only root may write: a trmtop
# that reopened /proc/PID/fd/N with root's rights would write into it.
victim = os.open(sys.argv[1], os.O_PATH)
seen = set(os.listdir("/proc/self/fd"))
def swap():
    while True:
        for fd in os.listdir("/proc/self/fd"):
            if fd in seen:
                continue
            try:
                link = os.readlink("/proc/self/fd/" + fd)
            except OSError:
                continue
            if link.startswith(("pipe:", "/memfd:trmtop")):
                try:
                    os.dup2(victim, int(fd))
                except OSError:
                    pass
threading.Thread(target=swap, daemon=True).start()
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.buffer.read()  # the main thread waits here, the GIL released
'''


def test_swapped_fds_are_refused(debian, user, tmp_path):
    """A hostile target swaps each fd trmtop makes in it (the memfd, the
    pipes) for an O_PATH descriptor of a root-only file, racing trmtop.
    Whoever wins the race, the file is never written (root trmtop used to
    reopen /proc/PID/fd/N with its own rights and write the agent into
    it); trmtop attaches or fails with a one-line error."""
    d = tempfile.mkdtemp(prefix="trmtop-swap-")  # the user must reach it
    os.chmod(d, 0o755)
    victim = os.path.join(d, "root-only")
    with open(victim, "wb") as f:
        f.write(b"root's own bytes\n")
    os.chmod(victim, 0o600)
    script = os.path.join(d, "swapper.py")
    with open(script, "w") as f:
        f.write(SWAPPER)
    os.chmod(script, 0o644)
    proc = subprocess.Popen([debian.path, "-E", "-B", script, victim], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=d,
                            user=user.uid, group=user.gid, extra_groups=[])
    try:
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read()
        refused = 0
        for _ in range(10):
            res = run_trmtop("start", "--pid", proc.pid, "--attach-timeout", "2", timeout=60)
            assert res.rc in (0, 2), res
            if res.rc == 2:
                refused += 1
                assert len([l for l in res.err.splitlines() if not l.startswith("hint:")]) == 1, res
            else:
                assert run_trmtop("stop", "--pid", proc.pid).rc in (0, 2)
            with open(victim, "rb") as f:
                assert f.read() == b"root's own bytes\n", "the root-only file was written"
            assert not stopped_or_traced(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d)
