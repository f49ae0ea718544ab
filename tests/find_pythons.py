"""find_pythons.py: the interpreters the agent and snapshot tests run under.

Prints "name path" lines: pyenv's ~/.pyenv/versions/3.X.Y/bin/python3 with
X >= 8, Debian's /usr/bin/python3.11 and /opt/python3.14/bin/python3.14;
missing ones are skipped.  Run by meson at configure time.
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
    for name, exe in (("debian-3.11", "/usr/bin/python3.11"),
                      ("opt-3.14", "/opt/python3.14/bin/python3.14")):
        if os.access(exe, os.X_OK):
            print("%s %s" % (name, exe))


main()
