"""Shape: allocations made from code whose file names are hostile.

    hostile_names.py REPLY CTL OUT

At startup: tracemalloc.start(FRAMES), then allocations from

* DISK_NAME, a real file written into the working directory, whose name
  holds terminal escape sequences (clear the screen, set the title), C1
  controls (CSI, NEL), the separators of collapsed stacks (';', ' '), a
  newline, DEL, a byte that is not UTF-8 (0xff, surrogateescape) and valid
  UTF-8 that must stay; its source lines hold escape sequences too, so
  that the snapshot stores them and reports print them;
* NUL_NAME, a code object renamed with code.replace(co_filename=...) to a
  name holding a NUL byte and an escape (compile() itself refuses NUL).

Each allocates through two functions of its own file, so that tracebacks
hold several hostile frames.  `ready` carries both names (JSON, with the
0xff byte as its surrogate escape "\\udcff").

Commands of its own:
    more      allocate as much again from both            -> ok

Afterwards nothing allocates: the main thread waits on a pipe
(_common.IdleShape).
"""

import json
import os
import types

import _common

FRAMES = 6
KEEP = []

DISK_NAME = ("evil\x1b[2J\x1b]0;pwned\x07\u009b31m\u0085;a b\nc\x7f\udcff"
             "\u00e9\u65e5.py")
NUL_NAME = "/nonexistent/a\x00b\x1b[7m.py"

# Source lines with escapes of their own (in comments: Python keeps them).
DISK_SRC = (
    "def inner(n, keep):\n"
    "    keep.append(bytearray(n))  # \x1b]0;src-title\x07 \x1b[2J \u009b31m  # DISK-LINE\n"
    "\n"
    "def outer(n, keep):\n"
    "    inner(n, keep)\n"
)
NUL_SRC = (
    "def inner(n, keep):\n"
    "    keep.append(bytearray(n))\n"
    "\n"
    "def outer(n, keep):\n"
    "    inner(n, keep)\n"
)
DISK_SIZE = 300000
NUL_SIZE = 200000


def renamed(code, name):
    """code with co_filename = name, nested code objects too."""
    consts = tuple(renamed(c, name) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_filename=name, co_consts=consts)


class HostileNames(_common.IdleShape):
    name = "hostile_names"

    def setup(self):
        import tracemalloc

        path = os.path.join(os.getcwd(), DISK_NAME)
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(DISK_SRC)
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            disk_code = compile(f.read(), path, "exec")
        nul_code = renamed(compile(NUL_SRC, "placeholder", "exec"), NUL_NAME)
        self.disk, self.nul = {}, {}
        exec(disk_code, self.disk)
        exec(nul_code, self.nul)
        tracemalloc.start(FRAMES)
        self.allocate()
        self.ready_info = {"disk": path, "nul": NUL_NAME}

    def allocate(self):
        for _ in range(3):
            self.disk["outer"](DISK_SIZE, KEEP)
        for _ in range(2):
            self.nul["outer"](NUL_SIZE, KEEP)

    def command(self, words):
        if words[0] == "more":
            self.allocate()
            return "ok"
        return None

    def report(self):
        return "shape: hostile_names\nkept: %d\n" % len(KEEP)


if __name__ == "__main__":
    _common.run(HostileNames)
