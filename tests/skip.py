"""skip.py REASON...: a test that reports a skip (exit 77) and says why.

meson defines it in place of a test whose interpreter is absent (see
tests/find_pythons.py), so that a run lists what it did not cover and a
skip is counted as a skip, never as a pass or a failure."""
import sys

print("SKIP: " + " ".join(sys.argv[1:]))
sys.exit(77)
