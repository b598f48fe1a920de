#!/usr/bin/python3
"""Parse a chaoslab --junit file with a real JUnit consumer (Debian's
python3-junitparser) and check its counts.

usage: junit_check.py FILE SUITES TESTS FAILURES ERRORS [ERROR_TYPE]
Exits 0 when the file parses and every count matches (and, if given, every
<error> has type ERROR_TYPE and every failure/error names a reproduce
command); 1 with a message otherwise."""
import sys

from junitparser import JUnitXml, Error, Failure


def main():
    path = sys.argv[1]
    want = [int(a) for a in sys.argv[2:6]]
    error_type = sys.argv[6] if len(sys.argv) > 6 else None
    xml = JUnitXml.fromfile(path)
    suites = list(xml)
    tests = failures = errors = 0
    for suite in suites:
        cases = list(suite)
        if suite.tests != len(cases):
            sys.exit(f"{suite.name}: tests={suite.tests} but {len(cases)} testcases")
        for case in cases:
            tests += 1
            for r in case.result:
                if isinstance(r, Failure):
                    failures += 1
                elif isinstance(r, Error):
                    errors += 1
                    if error_type is not None and r.type != error_type:
                        sys.exit(f"{case.name}: error type {r.type}, want {error_type}")
                else:
                    continue
                if "reproduce with: chaoslab run" not in (r.text or ""):
                    sys.exit(f"{case.name}: no reproduce command in {r.text!r}")
        if suite.failures + suite.errors > len(cases):
            sys.exit(f"{suite.name}: bad counts")
    got = [len(suites), tests, failures, errors]
    if got != want:
        sys.exit(f"{path}: suites/tests/failures/errors = {got}, want {want}")
    print(f"{path}: {got} ok")


main()
