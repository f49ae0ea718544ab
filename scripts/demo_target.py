"""A small stand-in for a long-running worker with a slow leak: the
bundled demo target of trmtop.  It handles fake requests forever, keeps a
cache that never shrinks, and sleeps between batches."""
import sys
import time

CACHE = {}


def handle(i):
    payload = ("request %d " % i) * 20
    CACHE[i] = payload.encode()          # the leak: never evicted
    return len(payload)


def main():
    i = 0
    sys.stdout.write("demo target running, pid ready\n")
    sys.stdout.flush()
    while True:
        for _ in range(200):
            handle(i)
            i += 1
        time.sleep(0.05)


if __name__ == "__main__":
    main()
