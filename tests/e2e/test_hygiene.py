"""Project hygiene: --help and the man page agree, banned calls stay out,
every public header compiles on its own."""
import glob
import os
import re
import subprocess

import pytest

from conftest import REPO, trmtop_path

COMMANDS = ("start", "stats", "stop", "snapshot", "top", "diff", "traceback",
            "export", "import")


def _help(*args):
    r = subprocess.run([trmtop_path()] + list(args), capture_output=True,
                       text=True, timeout=30)
    return r


def _commands():
    out = _help("--help").stdout
    return [c for c in COMMANDS if re.search(r"^\s+%s\b" % c, out, re.M)]


def _man():
    with open(os.path.join(REPO, "man", "trmtop.1")) as f:
        return f.read().replace("\\-", "-")


def test_version():
    r = _help("--version")
    assert r.returncode == 0 and re.match(r"trmtop \d+\.\d+\.\d+", r.stdout)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_options_in_man_page(cmd):
    if cmd not in _commands():
        pytest.skip("%s is not built into this trmtop" % cmd)
    r = _help(cmd, "--help")
    assert r.returncode == 0, r.stderr
    opts = set(re.findall(r"--([a-z][a-z-]+)", r.stdout)) - {"help", "usage", "version"}
    assert opts, r.stdout
    man = _man()
    missing = sorted(o for o in opts if "--" + o not in man)
    assert not missing, "options of 'trmtop %s' missing from man/trmtop.1: %s" % (cmd, missing)
    assert re.search(r"^\.(TP|B)\s*\n?\.?B?\s*%s\b" % cmd, man, re.M) or \
        (".B %s" % cmd) in man or ("trmtop %s" % cmd) in man, \
        "man/trmtop.1 does not describe '%s'" % cmd


def test_unknown_command_is_usage_error():
    r = _help("frobnicate")
    assert r.returncode == 1 and "frobnicate" in r.stderr


BANNED = re.compile(r"\b(sprintf|strcpy|atoi|strtok|signal|system)\s*\(")


def test_banned_calls():
    bad = []
    for path in glob.glob(os.path.join(REPO, "src", "**", "*.[ch]"), recursive=True):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                code = line.split("//")[0]
                if BANNED.search(code) and not code.lstrip().startswith(("*", "/*")):
                    bad.append("%s:%d: %s" % (os.path.relpath(path, REPO), n, line.strip()))
    assert not bad, "banned calls:\n" + "\n".join(bad)


@pytest.mark.parametrize("header", sorted(
    os.path.basename(h) for h in glob.glob(os.path.join(REPO, "include", "trmtop", "*.h"))))
def test_header_compiles_alone(header, tmp_path):
    build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(trmtop_path()))))
    config = os.path.join(build, "config.h")
    if not os.path.exists(config):
        pytest.skip("no config.h next to the binary under test")
    src = tmp_path / "t.c"
    src.write_text('#include "trmtop/%s"\n' % header)
    r = subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                        "-fsyntax-only", "-include", config,
                        "-I", os.path.join(REPO, "include"), str(src)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_binary_alone_attaches(python_faults, spawn, tmp_path):
    """The agent is embedded: a copy of the binary alone, in a directory
    with nothing else, attaches like the build's (as after meson install)."""
    import json
    import shutil

    alone = tmp_path / "bin" / "trmtop"
    alone.parent.mkdir()
    shutil.copy2(trmtop_path(), str(alone))
    t = spawn(python_faults, "cpu_loop")
    r = subprocess.run([str(alone), "stats", "--pid", str(t.pid), "--json"],
                       capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pid"] == t.pid
    assert t.exit() == 7


def test_debugger_after_attach(python_faults, spawn):
    """After trmtop, a debugger attaching to the target must not trip over
    the agent: gdb reads the link map and opens each library's path; the
    agent must not be listed under /proc/self/fd/N (gdb would open its own
    fd N, a pipe, and block)."""
    import shutil

    gdb = shutil.which("gdb")
    if not gdb:
        pytest.skip("gdb is not installed")
    t = spawn(python_faults, "cpu_loop")
    r = subprocess.run([trmtop_path(), "stats", "--pid", str(t.pid)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([gdb, "-p", str(t.pid), "-batch", "-nx", "-ex", "info sharedlibrary"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert "/memfd:trmtop-agent (deleted)" in r.stdout, r.stdout + r.stderr
    assert "/proc/self/fd" not in r.stdout
    assert t.exit() == 7
