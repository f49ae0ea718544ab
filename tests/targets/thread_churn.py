"""Shape: threads come and go all the time, like a thread pool that grows
and shrinks, while the main thread waits in join() on each batch.

Each batch starts 4 short-lived threads that compute a little and contend
for one lock.  At any moment threads are starting (their thread state half
made, waiting for the GIL), running, or ending: the states an attach must
never pick to run Python in.  Report: wrong results (0).
"""

import threading

import _common

BATCH = 4


class ThreadChurn(_common.Shape):
    name = "thread_churn"

    def __init__(self, argv):
        _common.Shape.__init__(self, argv)
        self.errors = 0
        self.lock = threading.Lock()

    def one(self, seed):
        r = _common.work_unit(seed)
        with self.lock:
            if r != _common.EXPECTED[seed]:
                self.errors += 1
            self.work += 1

    def main(self):
        while not self.stop.is_set():
            threads = [threading.Thread(target=self.one, args=(i % 16,)) for i in range(BATCH)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.tick()

    def report(self):
        return "shape: thread_churn\nerrors: %d\n" % self.errors


if __name__ == "__main__":
    _common.run(ThreadChurn)
