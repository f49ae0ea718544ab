# Target for interpreters trmtop must refuse (Python 2.7, 3.6, 3.7).
# Kept compatible with Python 2: it does not use _common.py.  It follows the
# same argv and ready protocol (REPLY_FIFO CTL_FIFO OUT_FILE), then blocks
# reading CTL_FIFO and exits with code 7 on "exit".
import os
import sys


def main():
    reply_fd = os.open(sys.argv[1], os.O_WRONLY)
    ctl_fd = os.open(sys.argv[2], os.O_RDONLY)
    os.write(reply_fd, b"ready\n")
    buf = b""
    while True:
        chunk = os.read(ctl_fd, 4096)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip() == b"exit":
                os.write(reply_fd, b"bye\n")
                f = open(sys.argv[3], "w")
                f.write("shape: old_python\n")
                f.close()
                sys.exit(7)
            elif line.strip() == b"ping":
                os.write(reply_fd, b"pong\n")
            elif line.strip():
                os.write(reply_fd, b"unsupported\n")


main()
