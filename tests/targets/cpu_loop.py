"""Shape: the main thread runs pure Python in a CPU loop, never blocking.

The only other thread is the command thread, blocked in read().  Report: the
number of wrong results (always 0 unless the interpreter state was corrupted).
"""

import _common


class CpuLoop(_common.Shape):
    name = "cpu_loop"

    def __init__(self, argv):
        _common.Shape.__init__(self, argv)
        self.errors = 0

    def main(self):
        expected = _common.EXPECTED
        work_unit = _common.work_unit
        while not self.stop.is_set():
            for seed in range(16):
                if work_unit(seed) != expected[seed]:
                    self.errors += 1
                self.work += 1
            self.tick()

    def report(self):
        return "shape: cpu_loop\nerrors: %d\n" % self.errors


if __name__ == "__main__":
    _common.run(CpuLoop)
