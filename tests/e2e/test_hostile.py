"""What a hostile target's data becomes in trmtop's reports.

* File names and source lines holding terminal escape sequences, C1
  controls, collapsed-stack separators, newlines, a NUL byte and a non-UTF-8
  byte (tests/targets/hostile_names.py): a snapshot works, and top, diff,
  traceback and the collapsed export print no raw control character; the
  collapsed export cannot be forged; the JSON export gives back the exact
  names.
* Crafted .trm files with sizes near 2^63: loaded exactly up to 2^63 - 1
  bytes, refused (exit 4, with the byte) past it; diff --fail-above is
  exact and cannot be fooled into passing by sizes that wrap.

Outputs are checked as raw bytes (run_trmtop decodes with replacement).
"""

import json
import os
import re
import struct
import subprocess
import zlib

from conftest import EXIT_CODE, TRMTOP_TIMEOUT, run_trmtop, trmtop_path
from leb128 import encode as varint
from test_snapshot import snapshot

import pytest

MARK = "# DISK-LINE"


def raw(*args):
    """(rc, stdout bytes, stderr bytes) of trmtop."""
    res = subprocess.run([trmtop_path()] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TRMTOP_TIMEOUT)
    return res.returncode, res.stdout, res.stderr


def assert_clean(data, what):
    """data (bytes) is valid UTF-8 with no control character but '\\n':
    no C0, no DEL, no C1 (U+0080-U+009F)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        pytest.fail("%s: not UTF-8 (%s): %r" % (what, e, data[:300]))
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0]
    assert not bad, "%s: raw control characters %r in %r" % (what, bad[:5], text[:500])
    return text


def unescape_collapsed(s):
    """The inverse of the collapsed escaping (docs/FORMATS.md)."""
    out = bytearray()
    i = 0
    while i < len(s):
        if s.startswith("\\x", i):
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        elif s.startswith("\\u00", i):
            out += chr(int(s[i + 2:i + 6], 16)).encode()
            i += 6
        else:
            assert s[i] != "\\", s
            out += s[i].encode()
            i += 1
    return out.decode("utf-8", "surrogateescape")


@pytest.fixture
def hostile(python, spawn, tmp_path):
    t = spawn(python, "hostile_names")
    a, b = str(tmp_path / "a.trm"), str(tmp_path / "b.trm")
    snapshot(t.pid, a)  # tracing is on: at once
    t.ok("more")
    snapshot(t.pid, b)
    t.check_healthy()
    assert t.exit() == EXIT_CODE
    return t.info["disk"], t.info["nul"], a, b


def test_hostile_names_text(hostile):
    disk, nul, a, b = hostile
    outs = {}
    for args in (["top", b], ["top", b, "--group-by", "filename"], ["top", b, "--group-by", "traceback"],
                 ["top", b, "--cumulative"], ["traceback", b], ["traceback", b, "--rank", "2"],
                 ["diff", a, b], ["diff", a, b, "--group-by", "traceback"],
                 ["diff", a, b, "--fail-above", "1", "--fail-above-line", "1"],
                 ["export", b, "--to", "collapsed"], ["top", b, "--format", "collapsed"]):
        rc, out, err = raw(*args)
        assert rc in (0, 3), (args, rc, err)
        outs[" ".join(args[:1] + args[2:])] = assert_clean(out, " ".join(args[:1] + args[2:]))
        assert_clean(err, "stderr of %s" % " ".join(args))
        if "--fail-above" in args:
            assert rc == 3
            err = err.decode()
            assert "\\x00b\\x1b[7m.py" in err and "\\x1b[2J\\x1b]0;pwned\\x07" in err, err
    top = outs["top"]
    # the names are there, escaped (each control byte as \xHH, C1 as \u00HH)
    want_disk = disk.encode("utf-8", "surrogateescape").replace(b"\x1b", b"\\x1b").replace(
        b"\x07", b"\\x07").replace(b"\n", b"\\x0a").replace(b"\x7f", b"\\x7f").replace(
        b"\xc2\x9b", b"\\u009b").replace(b"\xc2\x85", b"\\u0085").replace(b"\xff", b"\\xff").decode()
    assert want_disk + ":2: size=" in top, top
    assert "/nonexistent/a\\x00b\\x1b[7m.py:2: size=" in top, top
    # the source line, read from the file at snapshot time, escaped too
    assert "\\x1b]0;src-title\\x07 \\x1b[2J \\u009b31m  %s" % MARK in top, top
    assert "  File \"%s\", line 2" % want_disk in outs["traceback"] + outs["traceback --rank 2"]


def test_hostile_names_collapsed(hostile):
    disk, nul, a, b = hostile
    rc, out, err = raw("export", b, "--to", "json")
    assert rc == 0, err
    j = json.loads(out.decode("utf-8"))
    want = {}
    for s in j["stats"]:
        key = tuple((f["filename"], f["lineno"]) for f in s["frames"])
        want[key] = want.get(key, 0) + s["size"]
    names = {f for key in want for f, _ in key}
    # the exact names, NUL, controls and the surrogate escape included
    assert disk in names and nul in names, sorted(names)[:5]

    rc, out, err = raw("export", b, "--to", "collapsed")
    assert rc == 0, err
    text = assert_clean(out, "collapsed")
    got = {}
    for line in text.splitlines():
        m = re.match(r"^([^ ;]+(?:;[^ ;]+)*) (\d+)$", line)
        assert m, "a forged or broken line: %r" % line
        key = []
        for frame in m.group(1).split(";"):
            name, _, lineno = frame.rpartition(":")
            key.append((unescape_collapsed(name), int(lineno)))
        key = tuple(key)
        got[key] = got.get(key, 0) + int(m.group(2))
    # one line per stack: the same stacks and sizes as the JSON export
    assert got == {k: v for k, v in want.items() if v}, (sorted(got)[:3], sorted(want)[:3])


def test_hostile_names_json(hostile):
    disk, nul, a, b = hostile
    rc, out, err = raw("diff", a, b, "--format", "json", "--limit", "0")
    assert rc == 0, err
    j = json.loads(out.decode("utf-8"))
    rows = {tuple((f["filename"], f["lineno"]) for f in d["frames"]): d for d in j["diffs"]}
    assert rows[((disk, 2),)]["size_diff"] >= 3 * 300000, rows[((disk, 2),)]
    assert rows[((nul, 2),)]["size_diff"] >= 2 * 200000, rows[((nul, 2),)]
    rc, out, err = raw("top", b, "--format", "json", "--limit", "0")
    # the source line of the allocating line, exact (before 3.11 the
    # calling line allocates too: its frame)
    src = {f["lineno"]: f.get("source") for s in json.loads(out.decode())["stats"]
           for f in s["frames"] if f["filename"] == disk}
    assert src[2] == "keep.append(bytearray(n))  # \x1b]0;src-title\x07 \x1b[2J \u009b31m  " + MARK, src


# ---------------------------------------------------------------------------
# Crafted .trm files: sizes near 2^63




def crafted_trm(sizes, depth=1):
    """A .trm with one frame x.py:1, one traceback of `depth` of it, and
    traces of these sizes in this order (deltas as given: the reader must
    cope with sizes no writer writes).  Returns (bytes, offset of each
    size)."""
    out = bytearray(b"TRMSNAP\0" + struct.pack("<II", 1, 0))
    out += bytes(11)  # metadata: zeros, three empty strings
    out += varint(1) + varint(4) + b"x.py" + varint(1) + varint(0) + varint(1)
    out += varint(1) + varint(depth) + varint(0) + varint(0) * depth
    out += varint(len(sizes)) + varint(1) + varint(0) + varint(len(sizes))
    at, prev = [], 0
    for s in sizes:
        at.append(len(out))
        out += varint((s - prev) % (1 << 64))
        prev = s
    out += struct.pack("<I", zlib.crc32(bytes(out))) + b"TEND"
    return bytes(out), at


def write(tmp_path, name, data):
    p = str(tmp_path / name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def refused(path, *args):
    rc, out, err = raw(*[a if a is not None else path for a in args])
    assert rc == 4 and out == b"", (args, rc, out, err)
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trmtop: %s: " % path), err
    return lines[0]


def test_sizes_near_2_63(trmtop_bin, tmp_path):
    half = 1 << 62
    base = write(tmp_path, "base.trm", crafted_trm([100, 200])[0])
    near = write(tmp_path, "near.trm", crafted_trm([half - 1, half])[0])
    rc, out, err = raw("top", near, "--format", "json")
    assert rc == 0, err
    assert json.loads(out)["total_size"] == (1 << 63) - 1
    rc, out, err = raw("top", near, "--cumulative")
    assert rc == 0 and b"Total: size=" in out, (out, err)

    # growth to the maximum and back, exact both ways
    rc, out, err = raw("diff", base, near, "--format", "json")
    assert rc == 0, err
    assert json.loads(out)["total_size_diff"] == (1 << 63) - 1 - 300
    rc, out, err = raw("diff", near, base, "--format", "json", "--fail-above", "0",
                       "--fail-above-line", "0")
    assert rc == 0, err
    assert json.loads(out)["total_size_diff"] == -((1 << 63) - 1 - 300)
    for opt in ("--fail-above", "--fail-above-line"):
        rc, out, err = raw("diff", base, near, opt, "8388607TiB")
        assert rc == 3, (opt, rc, err)
    # a threshold of 2^63 bytes or more is no size
    rc, out, err = raw("diff", base, near, "--fail-above", "8388608TiB")
    assert rc == 1, err

    # one byte more, and sizes that wrap: refused with the byte, exit 4
    for sizes, bad in (([half, half], 1), ([1, 2, (1 << 64) - 1], 2), ([half] * 4, 1)):
        data, at = crafted_trm(sizes)
        p = write(tmp_path, "over.trm", data)
        line = refused(p, "top", None)
        assert line.endswith("the sizes add up to more than 2^63-1 bytes at byte %d: traces" % at[bad]), line
        # a diff against it cannot pass, whatever the threshold
        refused(p, "diff", base, None, "--fail-above", "1TiB")
        refused(p, "diff", None, base, "--fail-above", "1TiB")


def test_cumulative_past_2_63(trmtop_bin, tmp_path):
    """A 2^62-byte trace under a 3-deep recursive traceback loads; its
    cumulative statistics would be 3 * 2^62: an error, not a wrapped size."""
    base = write(tmp_path, "base.trm", crafted_trm([100])[0])
    p = write(tmp_path, "cum.trm", crafted_trm([1 << 62], depth=3)[0])
    rc, out, err = raw("top", p)
    assert rc == 0, err
    rc, out, err = raw("top", p, "--group-by", "traceback", "--format", "json")
    assert rc == 0 and json.loads(out)["stats"][0]["size"] == 1 << 62, err
    line = refused(p, "top", None, "--cumulative")
    assert "2^63-1" in line, line
    rc, out, err = raw("diff", base, p, "--cumulative", "--fail-above", "1")
    assert rc == 4 and out == b"" and b"2^63-1" in err, (rc, err)
