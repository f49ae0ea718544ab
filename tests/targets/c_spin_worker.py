"""Shape: like c_spin (the main thread spins in one C call holding the
GIL until the test writes a byte 1 at offset 0 of the file named by the
first extra argument), with one worker thread parked in os.read() on a
pipe of its own, the GIL released.

trmtop hijacks the worker, and the worker's remote call (PyGILState_Ensure,
the bootstrap, PyGILState_Release) waits for the GIL as long as the spin
lasts: this is how a test kills trmtop inside a remote call.  After the
spin the main thread serves commands itself; the worker is still parked,
and `worker` pokes it and waits for its answer (it works).
"""

import functools
import operator
import os
import threading

import _common
from c_spin import CSpin


class CSpinWorker(CSpin):
    name = "c_spin_worker"

    def __init__(self, argv):
        CSpin.__init__(self, argv)
        self.to_worker = os.pipe()
        self.from_worker = os.pipe()
        self.worker = threading.Thread(target=self.serve, name="parked")
        self.worker.daemon = True
        self.worker.start()

    def serve(self):
        while True:
            b = os.read(self.to_worker[0], 1)
            if not b:
                return
            os.write(self.from_worker[1], b)

    def main(self):
        self.flag[1] = 1  # about to spin: wait_spinning() in the tests
        self.spun = sum(iter(functools.partial(operator.getitem, self.flag, 0), 1))
        self.tick()

    def command(self, words):
        if words[0] == "worker":
            os.write(self.to_worker[1], b"w")
            return "ok" if os.read(self.from_worker[0], 1) == b"w" else "bad"
        return None

    def report(self):
        return "shape: c_spin_worker\nspun: %d\n" % self.spun


if __name__ == "__main__":
    _common.run(CSpinWorker)
