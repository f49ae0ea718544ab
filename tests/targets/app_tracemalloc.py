"""Shape: the application itself runs tracemalloc.start(5) at startup; the
main thread then runs the same pure-Python CPU loop as cpu_loop.py.

trmtop must use this tracing as it is (limit 5), report it as started by the
application, and never turn it off.
"""

import tracemalloc

import _common
import cpu_loop

FRAMES = 5


class AppTracemalloc(cpu_loop.CpuLoop):
    name = "app_tracemalloc"

    def setup(self):
        tracemalloc.start(FRAMES)

    def report(self):
        return "shape: app_tracemalloc\nerrors: %d\ntracing at exit: %s limit %d\n" % (
            self.errors,
            tracemalloc.is_tracing(),
            tracemalloc.get_traceback_limit(),
        )


if __name__ == "__main__":
    _common.run(AppTracemalloc)
