#!/usr/bin/env python3
"""Writes fuzz seeds (run from the source root; the output is deterministic
and committed):

* the .trm seeds of tests/fuzz/corpus/trm/ that push sizes to the edge of
  what a snapshot may hold (2^63 - 1 bytes in all, docs/FORMATS.md,
  "Sizes"), and the varint dictionary tests/fuzz/dict/trm.dict;
* the programs of tests/fuzz/corpus/reply/ for fuzz_reply.c (its
  next_frame() says how the bytes are read), table-then-delta among
  them: a full table reply, then a delta (wire minor 3).

    near-2-63.trm        traces adding up to exactly 2^63 - 1, hostile file
                         names (escape sequences, ';', ' ', a newline, a
                         NUL byte, an invalid UTF-8 byte), a recursive
                         traceback, two domains
    over-2-63.trm        the same with one byte more: refused
    cumulative-2-63.trm  a 2^62-byte trace under a 3-deep recursive
                         traceback: loads, cumulative statistics overflow
    sampled.trm          a sampled snapshot (version 2): estimates of in-use
                         and allocated bytes and blocks, allocated totals
                         near 2^63 - 1, a traceback with nothing in use
"""

import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from leb128 import encode as varint  # noqa: E402

CORPUS = "tests/fuzz/corpus/trm/"
REPLY = "tests/fuzz/corpus/reply/"
DICT = "tests/fuzz/dict/trm.dict"




def string(b):
    return varint(len(b)) + b


def trm(strings, frames, tracebacks, traces, sample_size=0):
    """frames: (string id, lineno); tracebacks: [frame id, ...] most recent
    first; traces: (traceback id, domain, size), or with sample_size
    (traceback id, domain, size, (count, alloc_size, alloc_count))."""
    if sample_size:
        out = bytearray(b"TRMSNAP\0" + struct.pack("<II", 2, 2))
    else:
        out = bytearray(b"TRMSNAP\0" + struct.pack("<II", 1, 0))
    out += varint(0) + varint(0x030B07F0) + varint(4) + varint(0)  # pid, version, limit, time
    out += varint(0) * 4 + string(b"/usr/bin/python3") + string(b"3.11.7") + string(b"h")
    if sample_size:
        out += varint(sample_size)
    out += varint(len(strings)) + b"".join(string(s) for s in strings)
    out += varint(len(frames)) + b"".join(varint(s) + varint(l) for s, l in frames)
    out += varint(len(tracebacks))
    for tb in tracebacks:
        out += varint(len(tb)) + varint(0) + b"".join(varint(f) for f in tb)
    out += varint(len(traces))
    for t in range(len(tracebacks)):
        mine = sorted((tr[1], tr[2], tr[3] if sample_size else None)
                      for tr in traces if tr[0] == t)
        runs = []
        for d, s, e in mine:
            if runs and runs[-1][0] == d:
                runs[-1][1].append((s, e))
            else:
                runs.append((d, [(s, e)]))
        out += varint(len(runs))
        for d, sizes in runs:
            out += varint(d) + varint(len(sizes))
            prev = 0
            for s, e in sizes:
                out += varint(s - prev)
                prev = s
                if sample_size:
                    count, asize, acount = e
                    out += varint(count) + varint(asize - s) + varint(acount - count)
    out += struct.pack("<I", zlib.crc32(bytes(out))) + b"TEND"
    return bytes(out)


STRINGS = [b"a.py", b"b.py", b"/x/\x1b[2J\x1b]0;t\x07;a b\nc\x00d\xff\xc2\x9b.py"]
FRAMES = [(0, 1), (1, 2), (2, 3)]
TBS = [[0], [1, 0], [2, 2, 2], []]


def main():
    half = 1 << 62
    near = [(0, 0, half), (1, 0, half >> 1), (2, 1, (half >> 1) - 100), (2, 0, 60), (3, 0, 39)]
    assert sum(s for _, _, s in near) == (1 << 63) - 1
    over = near[:-1] + [(3, 0, 40)]
    with open(CORPUS + "near-2-63.trm", "wb") as f:
        f.write(trm(STRINGS, FRAMES, TBS, near))
    with open(CORPUS + "over-2-63.trm", "wb") as f:
        f.write(trm(STRINGS, FRAMES, TBS, over))
    with open(CORPUS + "cumulative-2-63.trm", "wb") as f:
        f.write(trm(STRINGS, FRAMES, TBS, [(2, 0, half), (0, 0, 1)]))
    sampled = [(0, 0, 4 << 20, (64, 4 << 20, 64)), (1, 0, 1 << 20, (16, half, 1 << 40)),
               (2, 0, 0, (0, half - 1 - (4 << 20) - 524288, 7)), (3, 0, 524288, (1, 524288, 1))]
    assert sum(e[1] for _, _, _, e in sampled) == (1 << 63) - 1
    with open(CORPUS + "sampled.trm", "wb") as f:
        f.write(trm(STRINGS, FRAMES, TBS, sampled, sample_size=512 << 10))
    words = []
    for name, v in (("2^63-1", (1 << 63) - 1), ("2^63", 1 << 63), ("2^63+1", (1 << 63) + 1),
                    ("2^64-1", (1 << 64) - 1), ("2^62", 1 << 62), ("2^62-1", (1 << 62) - 1),
                    ("2^61", 1 << 61), ("2^32", 1 << 32), ("2^32-1", (1 << 32) - 1)):
        esc = "".join("\\x%02x" % b for b in varint(v))
        words.append('size_%s="%s"' % (name.replace("^", "_").replace("-", "m").replace("+", "p"), esc))
    words.append('end="TEND"')
    words.append('magic="TRMSNAP\\x00"')
    with open(DICT, "w") as f:
        f.write("# varints of sizes near 2^63 for fuzz_trm (tests/fuzz/make_trm_seeds.py)\n")
        f.write("\n".join(words) + "\n")


# fuzz_reply.c programs: one op byte, then its operands
def head(ntraces, strings, frames, tbs):
    return bytes([0, 0, ntraces, strings, frames, tbs, 4, 0])


def strings(*ks):
    return bytes([1, len(ks)] + list(ks))


def frames(*pairs):  # (string id, lineno)
    out = [2, len(pairs)]
    for sid, line in pairs:
        out += [sid, 0, line]
    return bytes(out)


def tracebacks(*tbs):
    out = [3, len(tbs)]
    for tb in tbs:
        out += [len(tb)] + list(tb) + [0]
    return bytes(out)


def traces(*ts):  # (index into fuzz_reply's sizes[], delta, tb, domain)
    out = [4, len(ts)]
    for k, delta, tb, dom in ts:
        out += [k, delta & 0xFF, tb, dom]
    return bytes(out)


END = bytes([6, 0])


def table_head(strings, frames, tbs, delta, rows):
    """fuzz_reply.c's op 9: a table head (wire minor 3) planning rows
    [(traceback id, index into sizes[], delta)], in step."""
    out = [9, strings, frames, tbs, 4, 200 if delta else 0, len(rows)]
    for tb, k, d in rows:
        out += [tb, k, d & 0xFF]
    return bytes(out + [0, 0, 0])


def table_traces(n):
    return bytes([4, n])


def reply_seeds():
    one = (head(3, 2, 2, 2) + strings(0, 3) + frames((0, 1), (1, 5)) +
           tracebacks([0], [1, 1, 0]) + traces((3, 0, 0, 0), (7, 0, 1, 0), (2, 0, 1, 1)) + END)
    # the second reply: one new name (a 5-byte name of the input's own,
    # NUL and ESC included), its frame, a traceback using old and new
    second = (head(2, 1, 1, 1) + bytes([1, 1, 200, 5]) + b"a\0\x1bb" + b"c" +
              frames((2, 9)) + tracebacks([2, 0]) + traces((3, 0, 2, 0), (1, 0, 0, 2)) + END)
    near = (head(2, 1, 1, 1) + strings(5) + frames((0, 1)) + tracebacks([0, 0, 0]) +
            traces((7, 0, 0, 0), (6, 0, 0, 0)) + END)            # 2^62 + 2^62-1
    over = (head(2, 1, 1, 1) + strings(4) + frames((0, 1)) + tracebacks([0]) +
            traces((7, 0, 0, 0), (7, 0, 0, 0)) + END)            # 2^62 + 2^62
    error_then = bytes([7, 3]) + b"abc" + bytes([4]) + one
    # a full table reply of two rows, then a delta changing one of them
    table = (table_head(2, 2, 2, False, [(0, 3, 0), (1, 2, 0)]) + strings(0, 3) +
             frames((0, 1), (1, 5)) + tracebacks([0], [1, 1, 0]) + table_traces(2) + END +
             table_head(0, 0, 0, True, [(1, 1, 0)]) + table_traces(1) + END)
    return {"one": one, "two-replies": one + second, "near-2-63": near,
            "over-2-63": near + over, "error-then-one": error_then,
            "table-then-delta": table}


if __name__ == "__main__":
    main()
    os.makedirs(REPLY, exist_ok=True)
    for name, data in reply_seeds().items():
        with open(REPLY + name, "wb") as f:
            f.write(data)
