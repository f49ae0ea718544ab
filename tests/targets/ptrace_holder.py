"""Not a target: a process that holds another one with PTRACE_SEIZE (without
stopping it), standing in for strace or gdb in the "already traced" test.

    python3 ptrace_holder.py PID REPLY_FIFO

Writes "ready" (or "error ERRNO") to REPLY_FIFO once seized, then waits for
EOF on stdin; exiting releases the tracee (the kernel detaches it).
"""

import ctypes
import os
import sys

PTRACE_SEIZE = 0x4206


def main():
    pid = int(sys.argv[1])
    reply = os.open(sys.argv[2], os.O_WRONLY)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long
    # Seize every thread so that TracerPid is ours whichever thread is looked at.
    tids = sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    for tid in tids:
        if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
            os.write(reply, ("error %d\n" % ctypes.get_errno()).encode())
            return 1
    os.write(reply, b"ready\n")
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
