"""xcheck.py: cross-check the snapshot module against tracemalloc itself.

Run under each supported interpreter: python3 xcheck.py SNAPCHECK [SEEDS]

Builds random snapshots directly from raw trace tuples in this
interpreter's layout ((domain, size, frames) before 3.9, (domain, size,
frames, total_nframe) since), with random filenames (non-ASCII, astral,
surrogate-escaped bytes, .pyc, glob metacharacters), line numbers,
tracebacks of varying depth, duplicate and recursive tracebacks, domains.
Computes Snapshot.statistics (every key, cumulative on and off),
compare_to, filter_traces and fnmatch.fnmatchcase here, runs the C helper
(snapcheck) on the same data and compares the results line by line: same
order, sizes, counts and frames.  Prints TAP.
"""
import fnmatch
import os
import random
import subprocess
import sys
import tempfile
import tracemalloc

NEW_LAYOUT = sys.hexversion >= 0x03090000
KEYS = ["filename", "lineno", "traceback"]

FILENAMES = [
    "a.py", "b.py", "a.pyc", "pkg/mod.py", "pkg/mod.pyc", "pkg/__init__.py",
    "/usr/lib/python3/json/decoder.py", "<frozen importlib._bootstrap>",
    "<unknown>", "\u00e9t\u00e9.py", "\u65e5\u672c/\u30c6\u30b9\u30c8.py",
    "\U0001F600.py", "\uffff.py", "Z.py", "z.py", "dir/[x].py", "a*b.py",
    "x\ny.py", "", "a.p", "a.pyc.py", "\udcff\udc80.py", "\ud7ff.py",
    "\ue000.py", "pkg/sub/deep.py", "A.PY", "-", "a-b.py", "!x.py",
    "a\x00b.py", "a\x00.py", "\x00", "a",
]

PATTERNS = [
    "*", "*.py", "*.pyc", "pkg/*", "*/mod.py", "[ab].py", "[!a]*", "*[\u00e9]*",
    "?.py", "[]]*", "[!]]*", "[a-]*", "[-a]*", "[a-c-e]*", "pkg/mod.py?",
    "\\*", "*\\*", "a*b*", "*a*b*c*", "[[]*", "*[!-]*", "<*>", "[<]*",
    "\u65e5*", "*\U0001F600*", "[\U0001F600-\U0001F64F]*", "[\ud7ff-\ue000]*",
    "[\udc80-\udcff]*", "dir/[[]x].py", "*.p[y]", "?", "", "**", "a.py",
    "[a-zA-Z].py", "[!a-y]*", "[b-a]*", "[z-a!]*", "[z-ab]*", "[!z-a]*",
]
REVERSED = ("[b-a]", "[z-a", "[!z-a]")

ALPHA = "ab-!]z^\\[\u00e9*?"


def enc(s):
    b = s.encode("utf-8", "surrogateescape")
    return b.hex() if b else "-"


def has_reversed(pat):
    return any(r in pat for r in REVERSED)


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def snapshot(self, nfiles, ntb, ntraces):
        r = self.r
        files = r.sample(FILENAMES, nfiles)
        frames = [(r.choice(files), r.choice([0, 1, 2, 3, 7, 12, 100000,
                                                 2**31 - 1, 2**32 - 1]))
                  for _ in range(nfiles * 3)]
        tbs = []
        for _ in range(ntb):
            depth = r.choice([1, 1, 2, 3, 4, 6, 10])
            tb = []
            for _ in range(depth):
                if tb and r.random() < 0.15:
                    tb.append(r.choice(tb))          # recursion
                else:
                    tb.append(r.choice(frames))
            tbs.append(tuple(tb))
        traces = []
        for _ in range(ntraces):
            tb = r.choice(tbs)
            domain = 0 if r.random() < 0.8 else r.randrange(4)
            size = r.choice([0, 1, 8, 16, 32, 32, 56, 64, 100, 4096,
                             r.randrange(1 << 20), r.randrange(1 << 40)])
            if NEW_LAYOUT:
                total = len(tb) + (r.choice([0, 0, 0, 1, 5]))
                traces.append((domain, size, tb, total))
            else:
                traces.append((domain, size, tb))
        return tracemalloc.Snapshot(traces, r.choice([1, 5, 10, 25]))

    def pattern(self):
        r = self.r
        while True:
            k = r.random()
            if k < 0.4:
                p = r.choice(PATTERNS)
            elif k < 0.8:
                p = list(r.choice(FILENAMES))
                for _ in range(r.randrange(3)):
                    if not p:
                        break
                    i = r.randrange(len(p))
                    p[i] = r.choice(["*", "?", "[%s]" % p[i], "[!%s]" % p[i],
                                     "[a-%s]" % p[i], p[i]])
                p = "".join(p)
                if r.random() < 0.2:
                    p += r.choice(["c", "*", ".pyc"])
            else:
                p = "".join(r.choice(ALPHA) for _ in range(r.randrange(1, 8)))
            if "\x00" in p:
                continue  # a pattern is a command-line argument: no NUL
            if NEW_LAYOUT and sys.hexversion >= 0x030a0000:
                return p
            if not has_reversed(p) and not self.bad_pattern(p):
                return p

    @staticmethod
    def bad_pattern(p):
        try:
            fnmatch.fnmatchcase("", p)
            return False
        except Exception:
            return True

    def filters(self):
        r = self.r
        out = []
        for _ in range(r.choice([0, 1, 1, 2, 3, 4])):
            inclusive = r.random() < 0.5
            if r.random() < 0.2:
                out.append(tracemalloc.DomainFilter(inclusive, r.randrange(3)))
                continue
            lineno = r.choice([None, None, 0, 1, 2, 3, 7])
            domain = r.choice([None, None, 0, 1])
            pat = self.pattern()
            f = tracemalloc.Filter(inclusive, pat, lineno=lineno,
                                   all_frames=r.random() < 0.5,
                                   domain=domain)
            f.raw_pattern = pat     # the C side normalises it itself
            out.append(f)
        return out


def write_snapshot(out, snap):
    strs = {}
    lines = []
    for t in snap.traces._traces:
        for fn, _ in t[2]:
            if fn not in strs:
                strs[fn] = len(strs)
    out.append("SNAP %d %d" % (sys.hexversion, snap.traceback_limit))
    for fn in strs:
        out.append("S " + enc(fn))
    for t in snap.traces._traces:
        domain, size, tb = t[0], t[1], t[2]
        total = t[3] if len(t) > 3 else len(tb)
        lines.append("T %d %d %d %d %s" % (
            domain, size, total, len(tb),
            " ".join("%d %d" % (strs[fn], ln) for fn, ln in tb)))
    out.extend(lines)


def locs(tb):
    # tb: a tracemalloc.Traceback, oldest first
    return ",".join("%s:%d" % (enc(f.filename), f.lineno) for f in tb)


def fmt_line(prefix, n, tb):
    s = locs(tb)
    return "%s %d%s" % (prefix, n, " " + s if s else "")


def py_stats(snap, key, cum):
    try:
        st = snap.statistics(key, cum)
    except ValueError:
        return ["ERR"]
    return [fmt_line("%d %d" % (x.size, x.count), len(x.traceback),
                     x.traceback) for x in st]


def py_compare(new, old, key, cum):
    try:
        st = new.compare_to(old, key, cum)
    except ValueError:
        return ["ERR"]
    return [fmt_line("%d %d %d %d" % (x.size, x.size_diff, x.count,
                                      x.count_diff),
                     len(x.traceback), x.traceback) for x in st]


def py_filter(snap, filters):
    try:
        res = snap.filter_traces(filters)
    except Exception:
        return ["ERR"]
    out = []
    for t in res.traces._traces:
        tb = t[2]
        s = ",".join("%s:%d" % (enc(fn), ln) for fn, ln in tb)
        out.append("%d %d %d%s" % (t[0], t[1], len(tb), " " + s if s else ""))
    return out


def filter_line(f):
    if isinstance(f, tracemalloc.DomainFilter):
        return "F %d 1 - 0 0 0 1 %d" % (f.inclusive, f.domain)
    return "F %d 0 %s %d %d %d %d %d" % (
        f.inclusive, enc(f.raw_pattern),
        f.lineno is not None, f.lineno or 0, bool(f.all_frames),
        f.domain is not None, f.domain or 0)


def main():
    helper = sys.argv[1]
    nseeds = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    ver = "%d.%d.%d" % sys.version_info[:3]
    inp = []
    queries = []   # (name, expected lines)
    g = Gen(0)
    for seed in range(nseeds):
        g = Gen(1000 + seed)
        big = seed % 4 == 3
        s_old = g.snapshot(8, 300 if big else 12, 3000 if big else 40)
        s_new = g.snapshot(8, 300 if big else 12, 3000 if big else 40)
        base = len([l for l in inp if l.startswith("SNAP")])
        write_snapshot(inp, s_old)
        write_snapshot(inp, s_new)
        for key in KEYS:
            for cum in (False, True):
                for idx, snap in ((base, s_old), (base + 1, s_new)):
                    inp.append("Q STATS %d %d %d" % (idx, KEYS.index(key),
                                                      cum))
                    queries.append(("seed %d stats %s cumulative=%s" % (
                        seed, key, cum), py_stats(snap, key, cum)))
                inp.append("Q COMPARE %d %d %d %d" % (
                    base + 1, base, KEYS.index(key), cum))
                queries.append(("seed %d compare %s cumulative=%s" % (
                    seed, key, cum), py_compare(s_new, s_old, key, cum)))
        # compare with itself (all diffs 0) and the other way round
        inp.append("Q COMPARE %d %d 1 0" % (base, base + 1))
        queries.append(("seed %d compare reversed" % seed,
                        py_compare(s_old, s_new, "lineno", False)))
        for i in range(8):
            filters = g.filters()
            inp.append("Q FILTER %d %d" % (base + 1, len(filters)))
            inp.extend(filter_line(f) for f in filters)
            queries.append(("seed %d filter %d (%s)" % (
                seed, i, ", ".join(repr(f.__dict__) for f in filters)),
                py_filter(s_new, filters)))
    # fnmatch
    r = random.Random(7)
    names = FILENAMES + ["".join(r.choice(ALPHA.replace("*", "").replace(
        "?", "")) for _ in range(r.randrange(0, 6))) for _ in range(40)]
    match_exp = []
    for i in range(4000):
        if i < len(PATTERNS) * 3:
            pat = PATTERNS[i % len(PATTERNS)]
        elif i % 2:
            pat = "".join(r.choice(ALPHA) for _ in range(r.randrange(0, 9)))
        else:
            pat = g.pattern()
        name = r.choice(names)
        try:
            exp = "1" if fnmatch.fnmatchcase(name, pat) else "0"
        except Exception:
            exp = "ERR"
        inp.append("Q MATCH %d %s %s" % (sys.hexversion, enc(pat), enc(name)))
        match_exp.append((pat, name, exp))

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "in.txt")
        with open(path, "w", encoding="ascii") as f:
            f.write("\n".join(inp) + "\n")
        proc = subprocess.run([helper, path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    if proc.returncode != 0:
        print("1..1")
        print("not ok 1 - snapcheck failed: %s" % proc.stderr.decode(
            "utf-8", "replace").strip())
        return 1
    results = {}
    cur = None
    for line in proc.stdout.decode("ascii").split("\n"):
        if line.startswith("Q "):
            cur = int(line[2:])
            results[cur] = []
        elif line:
            results[cur].append(line)

    ntests = len(queries) + 1
    print("1..%d" % ntests)
    fails = 0
    for i, (name, exp) in enumerate(queries):
        name = name.encode("ascii", "backslashreplace").decode("ascii")
        got = results.get(i)
        if got == exp:
            print("ok %d - python %s: %s (%d lines)" % (i + 1, ver, name,
                                                         len(exp)))
            continue
        fails += 1
        print("not ok %d - python %s: %s" % (i + 1, ver, name))
        got = got or []
        for k in range(max(len(exp), len(got))):
            e = exp[k] if k < len(exp) else "<none>"
            o = got[k] if k < len(got) else "<none>"
            if e != o:
                print("# line %d\n#  expected: %s\n#  got:      %s" % (
                    k, e, o))
                break
    bad = []
    base = len(queries)
    for j, (pat, name, exp) in enumerate(match_exp):
        got = results.get(base + j, ["<none>"])
        if got != [exp]:
            bad.append(ascii("# fnmatchcase(%r, %r): expected %s, got %s" % (
                name, pat, exp, got))[1:-1])
    if bad:
        fails += 1
        print("not ok %d - python %s: fnmatch, %d of %d differ" % (
            ntests, ver, len(bad), len(match_exp)))
        print("\n".join(bad[:20]))
    else:
        print("ok %d - python %s: fnmatch, %d cases" % (ntests, ver,
                                                      len(match_exp)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
