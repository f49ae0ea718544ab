"""Shape: a process that makes itself non-dumpable (prctl(PR_SET_DUMPABLE,
0) through ctypes), as some daemons do to keep their memory private.  Run
by the tests as an unprivileged user, so it takes no paths (the test's
temporary directories are root's): it writes ``ready`` to stdout once it is
non-dumpable, then waits for EOF on stdin and exits 0.
"""

import ctypes
import os
import sys

PR_SET_DUMPABLE = 4


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        sys.stderr.write("prctl: %s\n" % os.strerror(ctypes.get_errno()))
        return 1
    os.write(1, b"ready\n")
    sys.stdin.buffer.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
