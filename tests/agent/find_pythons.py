"""find_pythons.py: list the interpreters the agent tests run under.

Prints "name path" lines: pyenv's ~/.pyenv/versions/3.X.Y/bin/python3 with
X >= 8, then Debian's /usr/bin/python3.11; missing ones are skipped.
Run by meson at configure time.
"""
import glob
import os
import re


def main():
    home = os.path.expanduser("~")
    found = []
    for exe in glob.glob(os.path.join(home, ".pyenv/versions/3.*/bin/python3")):
        ver = os.path.basename(os.path.dirname(os.path.dirname(exe)))
        m = re.match(r"^3\.(\d+)\.(\d+)$", ver)
        if m and int(m.group(1)) >= 8 and os.access(exe, os.X_OK):
            found.append(((3, int(m.group(1)), int(m.group(2))), ver, exe))
    for _, ver, exe in sorted(found):
        print("%s %s" % (ver, exe))
    if os.access("/usr/bin/python3.11", os.X_OK):
        print("debian-3.11 /usr/bin/python3.11")


main()
