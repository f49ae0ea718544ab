"""trmtop start --sample, stats and stop on a live target: the sampler
turned on at run time, reported by stats (text and JSON), kept after
trmtop exits, and removed by stop; snapshot --sample turning it on and
off (or leaving it on), and a snapshot of a target where only the
sampler runs.  (Its accuracy and safety are tested in the agent,
tests/agent/sample_selftest.py; sampled snapshots against tracemalloc in
test_sampled.py.)"""
import os

from conftest import inline_target, stats, stopped_or_traced

ALLOCATOR = r'''
import sys
keep = []
sys.stdout.write("ready\n"); sys.stdout.flush()
while True:
    keep.append(bytes(1000 + len(keep) % 500))
    if len(keep) > 40000:
        del keep[:20000]
'''


def test_start_sample_stats_stop(python_faults, trmtop):
    with inline_target(python_faults, ALLOCATOR) as proc:
        res = trmtop("start", "--pid", proc.pid, "--sample=64KiB")
        assert res.rc == 0, res
        assert res.out.strip() == "pid %d: sampled every 64.0 KiB" % proc.pid, res
        st = stats(proc.pid)
        assert st["tracing"] == "off", st
        assert st["sample_size"] == 65536 and st["sample_memory"] > 0, st
        assert st["samples"] >= 0 and st["sample_capped"] is False, st
        res = trmtop("stats", "--pid", proc.pid)
        assert res.rc == 0 and "sampled every 64.0 KiB" in res.out, res
        # started again (default size): the running sampler is kept
        res = trmtop("start", "--pid", proc.pid, "--sample")
        assert res.rc == 0 and "sampled every 64.0 KiB" in res.out, res
        res = trmtop("stop", "--pid", proc.pid)
        assert res.rc == 0, res
        assert res.out.strip() == "pid %d: sampling off" % proc.pid, res
        st = stats(proc.pid)
        assert "sample_size" not in st and st["tracing"] == "off", st
        assert proc.poll() is None, "the target died"
        assert not stopped_or_traced(proc.pid)


def test_sample_size_refused(trmtop):
    for bad in ("0", "1x", "2TiB"):
        res = trmtop("start", "--pid", "1", "--sample=" + bad)
        assert res.rc == 1 and "--sample" in res.err, res   # usage


def test_snapshot_sample(python_faults, trmtop, tmp_path):
    a, b, c = (str(tmp_path / n) for n in ("a.trm", "b.trm", "c.trm"))
    with inline_target(python_faults, ALLOCATOR) as proc:
        # off: turned on for the snapshot, off again after it
        res = trmtop("snapshot", "--pid", proc.pid, "--sample=64KiB",
                     "--duration", "500ms", "-o", a)
        assert res.rc == 0 and "sampled every 64.0 KiB" in res.out, res
        st = stats(proc.pid)
        assert "sample_size" not in st and st["tracing"] == "off", st
        res = trmtop("top", a, "--format", "json")
        assert res.rc == 0, res
        top = res.json()
        assert top["sampled"]["size"] == 65536, top
        # the allocating line of the -c text holds most
        line = ALLOCATOR.splitlines().index(
            [l for l in ALLOCATOR.splitlines() if "keep.append" in l][0]) + 1
        assert top["stats"][0]["frames"][-1]["lineno"] == line, top["stats"][:2]
        # --keep-tracing: the sampler stays on
        res = trmtop("snapshot", "--pid", proc.pid, "--sample=64KiB",
                     "--duration", "0", "--keep-tracing", "-o", b)
        assert res.rc == 0, res
        assert stats(proc.pid)["sample_size"] == 65536
        # without --sample, tracing off and the sampler on: its estimates
        res = trmtop("snapshot", "--pid", proc.pid, "-o", c)
        assert res.rc == 0 and "sampled every 64.0 KiB" in res.out, res
        assert "the sampler runs" in res.err, res
        assert os.path.exists(c)
        res = trmtop("stop", "--pid", proc.pid)
        assert res.rc == 0 and res.out.strip() == "pid %d: sampling off" % proc.pid, res
        assert proc.poll() is None, "the target died"
        assert not stopped_or_traced(proc.pid)
