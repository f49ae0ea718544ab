"""Shared runtime of the trmtop end-to-end targets (CPython 3.8+).

Every target is started as

    python TARGET.py REPLY_FIFO CTL_FIFO OUT_FILE [extra args...]

and follows one protocol, driven by tests/e2e/conftest.py:

* REPLY_FIFO is opened for writing once and kept open.  The first line written
  to it is ``ready`` or ``ready {json}`` (the json carries shape details, e.g.
  the asyncio server's port).  Every command then gets exactly one reply line.
* CTL_FIFO is read by a command thread that stays blocked in read() between
  commands (the test holds it open read-write, so it never sees EOF).  The
  commands are:

    alloc N   hold N more bytes, allocated at ALLOC_LINE of this file -> ok
    free      drop everything held                                  -> ok
    truth     {"tracing", "current", "peak", "limit", "ticks", "work"} as JSON
    progress  {"ticks", "work"} as JSON
    sync      poke the main thread out of whatever it is blocked in (the shape
              says how; a no-op for running shapes), then wait until it has
              completed one more iteration of its loop                -> ok
              ("unsupported" where the shape cannot be poked, "timeout")
    ping      -> pong
    dump PATH tracemalloc.take_snapshot().dump(PATH) (the in-process ground
              truth; the snapshot is taken before anything else the command
              allocates after its line was read)                   -> ok
              ("error not tracing" when tracemalloc is off)
    exit      -> bye, then the main loop ends and the process exits with
              EXIT_CODE after writing its report

  A shape may answer commands of its own in Shape.command().

* The report written to OUT_FILE (and nothing else written to stdout) is
  deterministic: it depends only on the shape and on what the test fed it,
  never on timing, pids or how many loop iterations ran.  A test compares it
  byte for byte with an unattached run.  stderr must stay empty.

"Ticks" count completed iterations of the main thread's loop; "work" counts
units of computation (in the main thread or in workers, per shape).
"""

import json
import os
import sys
import threading
import tracemalloc

EXIT_CODE = 7
SYNC_TIMEOUT = 20.0

# Allocations made by `alloc`; kept alive until `free`.
HELD = []


def alloc(nbytes):
    HELD.append(bytearray(nbytes))  # ALLOC-LINE: tests look this marker up


class Shape(object):
    """A target shape.  Subclasses set up their threads in setup(), run the
    main loop in main() (which must return when self.stop is set and the
    shape has been poked), and write their deterministic report in report().
    """

    name = "shape"

    def __init__(self, argv):
        self.argv = argv  # extra arguments after OUT_FILE
        self.stop = threading.Event()
        self.ticks = 0
        self.work = 0
        self.tick_cond = threading.Condition()
        self.ready_info = None
        # A shape that can only announce readiness from inside main() (the
        # asyncio server) sets this and calls self.announce() itself.
        self.announce_from_main = False
        self.announce = None
        # Shapes whose threads must all be in C code while attached (nothing
        # that trmtop could hijack) run no command thread: the main thread
        # serves commands itself once main() has returned.
        self.commands_after_main = False

    # --- overridable -------------------------------------------------------
    def setup(self):
        pass

    def main(self):
        raise NotImplementedError

    def poke(self):
        """Make the main thread leave a blocking call (called from the command
        thread).  Return False if the shape cannot be poked."""
        return True

    def wake_for_exit(self):
        """Called after self.stop is set, so that main() returns."""
        self.poke()

    def report(self):
        return ""

    def command(self, words):
        """A command of this shape's own (called from the command thread
        for words[0] not known to the runner): return the reply line, or
        None if unknown."""
        return None

    # --- helpers -----------------------------------------------------------
    def tick(self):
        with self.tick_cond:
            self.ticks += 1
            self.tick_cond.notify_all()

    def wait_ticks(self, target, timeout):
        with self.tick_cond:
            return self.tick_cond.wait_for(lambda: self.ticks >= target, timeout)


class Periodic(object):
    """A daemon thread that calls fn() every `period` seconds of a pace
    set by set(ms): ms > 0 (re)starts it, 0 stops it; set returns once the
    old thread has ended.  `calls` counts the calls made."""

    def __init__(self, fn):
        self.fn = fn
        self.thread = None
        self.stop = threading.Event()
        self.calls = 0

    def run(self, period):
        while not self.stop.wait(period):
            self.fn()
            self.calls += 1

    def set(self, ms, period=None):
        """ms: the pace in milliseconds; period (seconds), when given, is
        used instead (a pace that is not a whole number of ms)."""
        if self.thread:
            self.stop.set()
            self.thread.join()
            self.thread = None
        if ms > 0:
            self.stop = threading.Event()
            self.thread = threading.Thread(
                target=self.run, args=(period if period else ms / 1000.0,))
            self.thread.daemon = True
            self.thread.start()


class IdleShape(Shape):
    """A shape whose main thread waits in os.read() on a pipe of its own and
    ticks each time it is poked (a process that sits idle between
    commands)."""

    def __init__(self, argv):
        Shape.__init__(self, argv)
        self.wake_r, self.wake_w = os.pipe()

    def main(self):
        self.tick()
        while not self.stop.is_set():
            os.read(self.wake_r, 1)
            self.tick()

    def poke(self):
        os.write(self.wake_w, b"x")
        return True


class Runner(object):
    def __init__(self, shape_cls):
        if len(sys.argv) < 4:
            sys.stderr.write("usage: %s REPLY_FIFO CTL_FIFO OUT_FILE [...]\n" % sys.argv[0])
            sys.exit(2)
        self.reply_path, self.ctl_path, self.out_path = sys.argv[1:4]
        self.shape = shape_cls(sys.argv[4:])
        self.reply_lock = threading.Lock()
        self.reply_fd = -1
        self.ctl_fd = -1

    def reply(self, text):
        data = (text + "\n").encode()
        with self.reply_lock:
            while data:
                n = os.write(self.reply_fd, data)
                data = data[n:]

    def truth(self):
        cur, peak = tracemalloc.get_traced_memory()
        return {
            "tracing": tracemalloc.is_tracing(),
            "current": cur,
            "peak": peak,
            "limit": tracemalloc.get_traceback_limit(),
            "ticks": self.shape.ticks,
            "work": self.shape.work,
        }

    def handle(self, line):
        words = line.split()
        if not words:
            return None
        cmd = words[0]
        sh = self.shape
        if cmd == "alloc":
            alloc(int(words[1]))
            return "ok"
        if cmd == "free":
            del HELD[:]
            return "ok"
        if cmd == "truth":
            return json.dumps(self.truth(), sort_keys=True)
        if cmd == "progress":
            return json.dumps({"ticks": sh.ticks, "work": sh.work}, sort_keys=True)
        if cmd == "ping":
            return "pong"
        if cmd == "sync":
            with sh.tick_cond:
                want = sh.ticks + 1
            if not sh.poke():
                return "unsupported"
            return "ok" if sh.wait_ticks(want, SYNC_TIMEOUT) else "timeout"
        if cmd == "dump":
            if not tracemalloc.is_tracing():
                return "error not tracing"
            tracemalloc.take_snapshot().dump(words[1])
            return "ok"
        if cmd == "exit":
            sh.stop.set()
            sh.wake_for_exit()
            return "bye"
        answer = sh.command(words)
        if answer is not None:
            return answer
        return "error unknown command %r" % cmd

    def command_loop(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.ctl_fd, 4096)
            except InterruptedError:  # pragma: no cover (PEP 475 retries)
                continue
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                answer = self.handle(line.decode())
                if answer is not None:
                    self.reply(answer)
                if line.split()[:1] == [b"exit"]:
                    return

    def run(self):
        sh = self.shape
        # The test holds the reply FIFO's read end and the control FIFO's both
        # ends before starting us, so neither open blocks.
        self.reply_fd = os.open(self.reply_path, os.O_WRONLY)
        self.ctl_fd = os.open(self.ctl_path, os.O_RDONLY)
        sh.setup()
        cmd_thread = None
        if not sh.commands_after_main:
            cmd_thread = threading.Thread(target=self.command_loop, name="trmtop-test-ctl")
            cmd_thread.daemon = True
            cmd_thread.start()
        def announce():
            ready = "ready"
            if sh.ready_info is not None:
                ready += " " + json.dumps(sh.ready_info, sort_keys=True)
            self.reply(ready)

        sh.announce = announce
        if not sh.announce_from_main:
            announce()
        sh.main()
        if cmd_thread is None:
            self.command_loop()
        text = sh.report()
        with open(self.out_path, "w") as f:
            f.write(text)
        if cmd_thread is not None:
            cmd_thread.join()
        return EXIT_CODE


def run(shape_cls):
    code = Runner(shape_cls).run()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


# --- deterministic CPU work shared by the shapes -----------------------------

def work_unit(seed):
    """A few hundred bytecodes of integer arithmetic; the result only depends
    on seed."""
    acc = seed
    for i in range(200):
        acc = (acc * 6364136223846793005 + 1442695040888963407 + i) & 0xFFFFFFFFFFFFFFFF
    return acc


EXPECTED = [work_unit(s) for s in range(16)]
