"""Shape: the main thread spins in one C call holding the GIL -- sum() over
iter(partial(operator.getitem, flag, 0), 1), where flag is a shared mapping
of the file named by the first extra argument -- until the test writes a
byte 1 at offset 0 of that file.  It writes 1 at offset 1 just before the
spin begins (the file holds two bytes: spin_flag() in the tests), so a test
can wait for the spin itself (wait_spinning) rather than for the start.

/proc shows the thread running (state R), so trmtop queues a pending call,
which cannot run before the spin ends: this is how a test leaves a pending
call behind a killed trmtop and then lets it run.  After the spin, the main
thread runs a few thousand Python calls and serves commands itself (there
is no command thread), e.g. `truth`.

With a second extra argument `after-tracing`, the main thread first sleeps
in short steps (a thread parked in a syscall, GIL released: trmtop attaches
by hijacking it) until tracemalloc traces, and only then spins: an agent
that is connected by then cannot get the GIL for its next request (this is
how a test holds trmtop waiting for an answer).
"""

import functools
import mmap
import operator
import os
import time
import tracemalloc

import _common


def _spin(n):
    acc = 0
    for i in range(n):
        acc += _common.work_unit(i & 15) & 1
    return acc


class CSpin(_common.Shape):
    name = "c_spin"

    def __init__(self, argv):
        _common.Shape.__init__(self, argv)
        fd = os.open(argv[0], os.O_RDWR)
        self.flag = mmap.mmap(fd, 2)
        os.close(fd)
        self.commands_after_main = True
        self.after_tracing = argv[1:2] == ["after-tracing"]
        self.spun = -1

    def main(self):
        while self.after_tracing and not tracemalloc.is_tracing():
            time.sleep(0.001)
        self.flag[1] = 1  # about to spin: wait_spinning() in the tests
        self.spun = sum(iter(functools.partial(operator.getitem, self.flag, 0), 1))
        self.work = _spin(2000)
        self.tick()

    def report(self):
        return "shape: c_spin\nspun: %d\n" % self.spun


if __name__ == "__main__":
    _common.run(CSpin)
