#!/usr/bin/env python3
"""make_fixtures.py: write tracemalloc Snapshot.dump() fixtures.

Run it under each supported interpreter (3.8+):

    ~/.pyenv/versions/3.11.7/bin/python3 scripts/make_fixtures.py \
        tests/fixtures/tracemalloc [NAME]

It writes NAME.pickle (NAME defaults to "3.X"), a small real dump taken by
that interpreter's own tracemalloc, and NAME-empty.pickle (a snapshot with
no trace), each with NAME[-empty].json next to it: the statistics that
interpreter computes from the dump it just wrote (Snapshot.load(path)
.statistics('traceback')).

The main dump holds:
- allocations from several lines and call depths (traceback limit 8),
- many traces sharing one traceback (the pickle memo shares the tuple),
- a traceback deeper than the limit (total_nframe > number of frames),
- frames from a non-ASCII filename (code compiled under that name),
- a trace in another domain with a size above 2**32 (PyTraceMalloc_Track
  through ctypes, when the interpreter exports it; skipped otherwise).
Only traces whose most recent frame is one of ours are kept, so the file
stays small.

JSON layout:
  {"python": "3.11.7", "hexversion": 51054576, "traceback_limit": 8,
   "ntraces": N, "total_size": S,
   "stats": [{"size": .., "count": .., "total_nframe": n or null,
              "frames": [[filename, lineno], ...]}, ...],
   "traces": [[domain, size, [[filename, lineno], ...], total_nframe or
               null], ...]}
with "stats" in the order statistics() returns them, frames in the order
tracemalloc.Traceback holds them (oldest call first; statistics() drops
total_nframe, so it is null there) and "traces" in the order of the dump,
their frames as the dump holds them (most recent call first).
"""
import json
import os
import sys
import tracemalloc

LIMIT = 8
UNICODE_FILE = "/tmp/trm_fixture_d\u00e9j\u00e0_\u6a21\u5757_\u03bb.py"
UNICODE_SRC = """
def alloc_unicode(n):
    keep = []
    for i in range(n):
        keep.append(bytearray(40 + i))
    return keep

def alloc_unicode_big():
    return bytearray(70000)
"""

KEEP = []


def leaf(n):
    return [bytes(100 + i) for i in range(n)]  # shared traceback, n traces


def middle(n):
    KEEP.append(bytearray(2000))
    return leaf(n)


def deep(level):
    if level > 0:
        return deep(level - 1)
    return bytearray(333)  # deeper than the limit


def track_foreign():
    """A trace in domain 7 of 3 GB (no real memory behind it)."""
    try:
        import ctypes
        track = ctypes.pythonapi.PyTraceMalloc_Track
        untrack = ctypes.pythonapi.PyTraceMalloc_Untrack
    except (ImportError, AttributeError):
        return None
    track.argtypes = [ctypes.c_uint, ctypes.c_size_t, ctypes.c_size_t]
    untrack.argtypes = [ctypes.c_uint, ctypes.c_size_t]
    if track(7, 0x7e57000, 3000000000) != 0:
        return None
    return lambda: untrack(7, 0x7e57000)


def stats_json(path):
    snap = tracemalloc.Snapshot.load(path)
    out = []
    for st in snap.statistics("traceback"):
        tb = st.traceback
        out.append({
            "size": st.size,
            "count": st.count,
            "total_nframe": getattr(tb, "total_nframe", None),
            "frames": [[f.filename, f.lineno] for f in tb],
        })
    return {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "hexversion": sys.hexversion,
        "traceback_limit": snap.traceback_limit,
        "ntraces": len(snap.traces),
        "total_size": sum(t.size for t in snap.traces),
        "stats": out,
        "traces": [[t.domain, t.size,
                    [[f.filename, f.lineno] for f in reversed(t.traceback)],
                    getattr(t.traceback, "total_nframe", None)]
                   for t in snap.traces],
    }


def dumps_lines(doc):
    """JSON with one statistic or trace per line."""
    parts = []
    for key in sorted(doc):
        val = doc[key]
        if isinstance(val, list):
            items = ",\n  ".join(json.dumps(v, ensure_ascii=False)
                                 for v in val)
            text = "[\n  %s\n ]" % items if val else "[]"
        else:
            text = json.dumps(val, ensure_ascii=False)
        parts.append(" %s: %s" % (json.dumps(key), text))
    return "{\n%s\n}\n" % ",\n".join(parts)


def write(snap, outdir, name):
    path = os.path.join(outdir, name + ".pickle")
    snap.dump(path)
    with open(os.path.join(outdir, name + ".json"), "w",
              encoding="utf-8") as f:
        f.write(dumps_lines(stats_json(path)))
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


def main():
    outdir = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else "%d.%d" % sys.version_info[:2]
    os.makedirs(outdir, exist_ok=True)
    ns = {}
    exec(compile(UNICODE_SRC, UNICODE_FILE, "exec"), ns)

    tracemalloc.start(LIMIT)
    keep = [middle(12), leaf(3)]
    keep.append(deep(20))
    keep.append(ns["alloc_unicode"](5))
    keep.append(ns["alloc_unicode_big"]())
    undo = track_foreign()
    snap = tracemalloc.take_snapshot()
    if undo:
        undo()
    tracemalloc.stop()

    ours = [tracemalloc.Filter(True, leaf.__code__.co_filename),
            tracemalloc.Filter(True, UNICODE_FILE)]
    small = snap.filter_traces(ours)
    write(small, outdir, name)
    empty = snap.filter_traces([tracemalloc.Filter(True, "/nonexistent")])
    write(empty, outdir, name + "-empty")
    del keep


if __name__ == "__main__":
    main()
