"""Shape: the main thread is blocked in Thread.join() (no timeout) while two
worker threads compute.

A round lasts until the command thread pokes it (`sync`) or `exit`: the
workers then finish, the main thread's join() returns, it counts a tick and
starts a new round.  Without pokes the main thread stays in join() for ever.
Report: worker count and wrong results (0).
"""

import threading

import _common

WORKERS = 2


class JoinWorkers(_common.Shape):
    name = "join_workers"

    def __init__(self, argv):
        _common.Shape.__init__(self, argv)
        self.errors = 0
        self.lock = threading.Lock()
        self.round_end = threading.Event()
        # Serialises starting a round against poking it, so that a poke is
        # never lost between two rounds.
        self.round_lock = threading.Lock()

    def worker(self, round_end):
        expected = _common.EXPECTED
        work_unit = _common.work_unit
        seed = 0
        while not round_end.is_set():
            if work_unit(seed) != expected[seed]:
                with self.lock:
                    self.errors += 1
            seed = (seed + 1) % 16
            with self.lock:
                self.work += 1

    def start_round(self):
        self.round_end = threading.Event()
        self.threads = [
            threading.Thread(target=self.worker, args=(self.round_end,), name="worker-%d" % i)
            for i in range(WORKERS)
        ]
        for t in self.threads:
            t.start()

    def setup(self):
        # Workers are running before ready is sent; main() then joins them.
        self.start_round()

    def main(self):
        while True:
            for t in self.threads:
                t.join()
            with self.round_lock:
                self.tick()
                if self.stop.is_set():
                    break
                self.start_round()

    def poke(self):
        with self.round_lock:
            self.round_end.set()
        return True

    def report(self):
        return "shape: join_workers\nworkers: %d\nerrors: %d\n" % (WORKERS, self.errors)


if __name__ == "__main__":
    _common.run(JoinWorkers)
