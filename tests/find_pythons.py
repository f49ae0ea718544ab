"""find_pythons.py: the interpreters the tests run under, in one place.

    find_pythons.py                  the targets: one "name path" line each
    find_pythons.py --free-threaded  the free-threaded builds (to be refused)

Targets are pyenv's ~/.pyenv/versions/3.X.Y/bin/python3 with X >= 8,
Debian's /usr/bin/python3.11 and CPython 3.14 built by
scripts/python314.sh.  A well-known interpreter that is absent is printed
as "name - reason": meson defines a test for it that reports a skip with
that reason (tests/skip.py), so a run says what it did not cover.

CPython 3.14 comes from the environment that scripts/test.sh sets:
TRMTOP_PY314 / TRMTOP_PY314T are the paths of the regular and the
free-threaded build, and TRMTOP_PY314_SKIP says why they are absent
(../shared/interpreters/ missing, or the build failed, which test.sh
counts as a failure of its own).  Without them, the default prefix of
scripts/python314.sh is looked at.  Imported by tests/e2e/conftest.py.
"""
import glob
import os
import re
import sys

PY314_ROOT = os.environ.get("TRMTOP_PY314_ROOT", "/opt/trmtop")
DEBIAN_311 = "/usr/bin/python3.11"


def _py314(var, default):
    """(path, reason): reason is None when the interpreter is there."""
    path = os.environ.get(var) or default
    if os.access(path, os.X_OK):
        return path, None
    why = os.environ.get("TRMTOP_PY314_SKIP")
    if not why:
        why = "%s not found (bash scripts/python314.sh builds it)" % path
    return path, why


def py314():
    return _py314("TRMTOP_PY314", os.path.join(PY314_ROOT, "python3.14/bin/python3.14"))


def py314t():
    return _py314("TRMTOP_PY314T", os.path.join(PY314_ROOT, "python3.14t/python3.14t"))


def well_known():
    """[(name, path, reason or None)] of the interpreters outside pyenv."""
    deb_why = None if os.access(DEBIAN_311, os.X_OK) else "%s not installed" % DEBIAN_311
    return [("debian-3.11", DEBIAN_311, deb_why), ("py3.14", ) + py314()]


def pyenv_targets():
    """[(name, path)] of pyenv's 3.8+ interpreters, oldest first."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = []
    for exe in glob.glob(os.path.join(root, "versions/3.*/bin/python3")):
        ver = os.path.basename(os.path.dirname(os.path.dirname(exe)))
        m = re.match(r"^3\.(\d+)\.(\d+)$", ver)
        if m and int(m.group(1)) >= 8 and os.access(exe, os.X_OK):
            found.append(((3, int(m.group(1)), int(m.group(2))), ver, exe))
    return [(ver, exe) for _, ver, exe in sorted(found)]


def main(argv):
    if argv[1:] == ["--free-threaded"]:
        path, why = py314t()
        rows = [("py3.14t", path, why)]
    elif len(argv) == 1:
        rows = [(n, p, None) for n, p in pyenv_targets()] + well_known()
    else:
        sys.stderr.write("usage: find_pythons.py [--free-threaded]\n")
        return 2
    for name, path, why in rows:
        print("%s %s" % (name, path) if why is None else "%s - %s" % (name, why))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
