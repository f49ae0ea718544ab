"""Unattachable shape: the only thread (main) is busy in one long C call
(sum() over itertools.repeat) that holds the GIL and never reaches a safe
point.  /proc shows it running (state R), so trmtop takes the pending-call
path and then waits for a HELLO that never comes.  Used to kill the target
while trmtop waits; it never finishes on its own.
"""

import itertools

import _common


class CBusy(_common.Shape):
    name = "c_busy"

    def __init__(self, argv):
        _common.Shape.__init__(self, argv)
        self.commands_after_main = True

    def main(self):
        self.work = sum(itertools.repeat(1, 10 ** 15))
        self.tick()

    def report(self):
        return "shape: c_busy\n"


if __name__ == "__main__":
    _common.run(CBusy)
