"""Shape: a minimal process that never imports threading (nor _common.py,
which does), so a test can see what trmtop adds to sys.modules and to the
heap.  Same argv and ready protocol as the others (REPLY_FIFO CTL_FIFO
OUT_FILE [idle|busy [HOLD_FD]]); commands, one reply line each:

    ping     -> pong
    modules  -> the names in sys.modules, space-separated
    blocks   -> sys.getallocatedblocks() after gc.collect() (the first
                one imports gc)
    blocks-uncached -> the same after clearing the interpreter's type
                attribute cache
    hold     -> holding, then the main thread blocks in read(2) on HOLD_FD
                through ctypes.PyDLL, i.e. holding the GIL (no thread of
                the process can run Python: an attach gives up), until the
                test writes a byte there -> ok
    hook-exec -> ok, after installing an audit hook that, at the next
                exec() anywhere in the process (trmtop's bootstrap calls
                exec), holds as `hold` does until a byte comes on HOLD_FD
    exit     -> bye, then the report is written and the process exits 7

idle (default): the main thread waits in os.read() on the control FIFO
(GIL released: trmtop hijacks it).  busy: the main thread runs Python and
polls the FIFO without blocking (state R: trmtop queues a pending call,
or on 3.14 asks for a PEP 768 remote exec).
The report is "shape: bare\n" whatever happened.
"""

import os
import sys


def work():
    """A few hundred bytecodes on small (cached) ints: allocates nothing,
    so that the heap only changes when a command or trmtop changes it."""
    i = 0
    while i < 200:
        i += 1


def answer(line):
    if line == b"ping":
        return b"pong"
    if line == b"modules":
        return " ".join(sorted(sys.modules)).encode()
    if line in (b"blocks", b"blocks-uncached"):
        import gc  # here: trmtop's snapshots may import gc (3.8, 3.9)

        if line == b"blocks-uncached":
            # the type attribute cache holds the last attribute-name
            # strings looked up (3.12+: one slot per string object)
            clear = getattr(sys, "_clear_internal_caches", None)
            (clear or sys._clear_type_cache)()
        gc.collect()
        return b"%d" % sys.getallocatedblocks()
    if line == b"exit":
        return b"bye"
    return b"error unknown command"


def gil_read(fd):
    """read(fd, 1 byte) holding the GIL; returns what read(2) returned."""
    import ctypes  # here: only the tests that hold import it

    libc = ctypes.PyDLL(None)  # PyDLL: the GIL stays held during the call
    libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
    libc.read.restype = ctypes.c_ssize_t
    buf = ctypes.create_string_buffer(1)
    return lambda: libc.read(fd, buf, 1)


def hold(reply, fd):
    read = gil_read(fd)
    os.write(reply, b"holding\n")
    got = read()
    return b"ok" if got == 1 else b"error read %d" % got


def hook_exec(fd):
    read = gil_read(fd)
    armed = [True]

    def hook(event, args):
        if event == "exec" and armed[0]:
            armed[0] = False
            read()

    sys.addaudithook(hook)
    return b"ok"


def main():
    busy = sys.argv[4:5] == ["busy"]
    hold_fd = int(sys.argv[5]) if len(sys.argv) > 5 else -1
    reply = os.open(sys.argv[1], os.O_WRONLY)
    ctl = os.open(sys.argv[2], os.O_RDONLY)
    if busy:
        os.set_blocking(ctl, False)
    os.write(reply, b"ready\n")
    buf = b""
    while True:
        try:
            chunk = os.read(ctl, 4096)
        except BlockingIOError:
            work()
            continue
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip() == b"hold":
                os.write(reply, hold(reply, hold_fd) + b"\n")
                continue
            if line.strip() == b"hook-exec":
                os.write(reply, hook_exec(hold_fd) + b"\n")
                continue
            os.write(reply, answer(line.strip()) + b"\n")
            if line.strip() == b"exit":
                with open(sys.argv[3], "w") as f:
                    f.write("shape: bare\n")
                return 7
    return 7


if __name__ == "__main__":
    sys.exit(main())
