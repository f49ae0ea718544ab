"""Sum test results for scripts/test.sh: meson's testlog.json (one JSON
object per line), with the pytest-based e2e entry replaced by the counts
in its JUnit XML file.  Prints "passed failed skipped"."""
import json
import sys
import xml.etree.ElementTree as ET


def main():
    log, junit = sys.argv[1], sys.argv[2]
    passed = failed = skipped = 0
    saw_e2e = e2e_bad = False
    with open(log) as f:
        for line in f:
            if not line.strip():
                continue
            t = json.loads(line)
            if t["name"] == "e2e" or t["name"].endswith("/ e2e"):
                saw_e2e = True
                e2e_bad = t["result"] not in ("OK", "EXPECTEDFAIL")
                continue
            if t["result"] in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif t["result"] == "SKIP":
                skipped += 1
            else:
                failed += 1
    if saw_e2e:
        e2e_failed = 0
        try:
            root = ET.parse(junit).getroot()
            for suite in root.iter("testsuite"):
                n = int(suite.get("tests", 0))
                f = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
                s = int(suite.get("skipped", 0))
                passed += n - f - s
                e2e_failed += f
                skipped += s
        except (OSError, ET.ParseError):
            e2e_failed += 1
        if e2e_bad and e2e_failed == 0:
            e2e_failed = 1  # pytest itself failed: a crash, no tests found
        failed += e2e_failed
    print(passed, failed, skipped)


if __name__ == "__main__":
    main()
