"""Shape: code compiled under file names the test chooses.

The main thread idles (IdleShape).  tracemalloc is started at startup with
one frame, so a snapshot needs no --duration.  An optional extra argument
is a directory to change into first (the working directory that relative
names are resolved from).  Commands of its own:

    compile NAME SIZE   compile GEN_SRC under the file name NAME and run it;
                        it keeps SIZE bytes allocated at its line GEN_LINE
                        (3)                                          -> ok

So the allocation site NAME:3 is in the snapshot, and the source line
trmtop stores for it is line 3 of whatever file NAME leads to, as the
target itself would read it (or nothing).  NAME cannot hold blanks.

Report: the names compiled, one per line, in order.
"""

import os
import tracemalloc

import _common

GEN_SRC = "first = 1\nsecond = 2\nheld = bytearray(SIZE)\n"
GEN_LINE = 3
COMPILED = []
KEPT = []


class Sources(_common.IdleShape):
    name = "sources"

    def setup(self):
        if self.argv:
            os.chdir(self.argv[0])
        tracemalloc.start(1)

    def command(self, words):
        if words[0] == "compile":
            ns = {"SIZE": int(words[2])}
            exec(compile(GEN_SRC, words[1], "exec"), ns)
            KEPT.append(ns)
            COMPILED.append(words[1])
            return "ok"
        return None

    def report(self):
        return "".join(n + "\n" for n in COMPILED)


if __name__ == "__main__":
    _common.run(Sources)
