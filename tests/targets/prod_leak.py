"""Shape: a production-like worker for the sampled mode (issue 12's leak
test): a large long-lived heap, request handling that churns short-lived
objects, and one line that leaks a little per request.

The main thread blocks in read() on a pipe (poked only by `exit`).  Nothing
is traced at startup.  Commands of its own:

    heap MB    build about MB MiB of long-lived objects from three lines
               (HEAP-BYTES, HEAP-STR, HEAP-DICT); kept until exit   -> ok
    serve MS   a worker thread handles "requests" in a loop: each churns
               short-lived objects (CHURN-BYTES, CHURN-DICT: allocated,
               then dropped) and leaks LEAK_SIZE bytes at LEAK-LINE, at a
               pace of LEAK_PER_MINUTE leaked per simulated minute, where
               a simulated minute lasts MS milliseconds (an accelerated
               run of a leak of 1 MiB a minute); serve 0 stops it (the
               reply comes once it has stopped)                     -> ok
    leaked     the bytes leaked so far                      -> a number
    requests   the requests served so far                   -> a number

Report: the number of long-lived objects built (deterministic).
"""

import _common

LEAK_SIZE = 4096
LEAK_PER_MINUTE = 1 << 20
PER_MINUTE = LEAK_PER_MINUTE // LEAK_SIZE  # requests in a simulated minute

HEAP = []
LEAKED = []


def build_heap(mib):
    n = mib * (1 << 20) // 3
    HEAP.append([bytes(1000 + i % 7) for i in range(n // 1040)])            # HEAP-BYTES
    HEAP.append(["%s-%d" % ("s" * 200, i) for i in range(n // 260)])         # HEAP-STR
    HEAP.append({i: (i, str(i)) for i in range(n // 200)})                  # HEAP-DICT
    return sum(len(h) for h in HEAP)


def churn(i):
    tmp = [bytes(200 + (i + k) % 300) for k in range(40)]                    # CHURN-BYTES
    tmp.append([{"k": k, "v": i} for k in range(30)])                       # CHURN-DICT
    return len(tmp)


def request():
    churn(len(LEAKED))
    LEAKED.append(bytearray(LEAK_SIZE))                                     # LEAK-LINE


class ProdLeak(_common.IdleShape):
    name = "prod_leak"

    def __init__(self, argv):
        _common.IdleShape.__init__(self, argv)
        self.server = _common.Periodic(request)
        self.built = 0

    def command(self, words):
        if words[0] == "heap":
            self.built += build_heap(int(words[1]))
            return "ok"
        if words[0] == "serve":
            ms = int(words[1])
            self.server.set(ms, ms / 1000.0 / PER_MINUTE)
            return "ok"
        if words[0] == "leaked":
            return str(len(LEAKED) * LEAK_SIZE)
        if words[0] == "requests":
            return str(self.server.calls)
        return None

    def report(self):
        self.server.set(0)
        return "shape: prod_leak\nheap objects: %d\n" % self.built


if __name__ == "__main__":
    _common.run(ProdLeak)
