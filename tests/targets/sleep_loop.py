"""Shape: the main thread loops over time.sleep(), measuring each sleep.

A sleep that returns earlier than requested (which an injector that fails to
restart the interrupted syscall would cause) is counted.  Report: the number
of short sleeps (must be 0).
"""

import time

import _common

SLEEP = 0.25
# Float rounding slack only: a shortened sleep is short by far more than this.
SLACK = 0.0005


class SleepLoop(_common.Shape):
    name = "sleep_loop"

    def __init__(self, argv):
        _common.Shape.__init__(self, argv)
        self.short = 0

    def main(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            time.sleep(SLEEP)
            if time.monotonic() - t0 + SLACK < SLEEP:
                self.short += 1
            self.work += 1
            self.tick()

    def report(self):
        return "shape: sleep_loop\nshort sleeps: %d\n" % self.short


if __name__ == "__main__":
    _common.run(SleepLoop)
