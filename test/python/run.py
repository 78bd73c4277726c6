"""Runs the pipc unittest suite (every test_*.py here) and prints a summary.

    python3 test/python/run.py [--json FILE] [-v]

--json FILE writes {"passed": N, "failed": N, "skipped": N} for .ci/run,
which adds the counts to its closing line. Exit status 0 only if all passed.
"""
import json
import os
import sys
import unittest


def main() -> int:
    args = sys.argv[1:]
    out = None
    if "--json" in args:
        i = args.index("--json")
        out = args[i + 1]
        del args[i:i + 2]
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py", top_level_dir=here)
    result = unittest.TextTestRunner(verbosity=2 if "-v" in args else 1).run(suite)
    # Each test checks /dev/shm itself (_util.IPCTestCase); a file under this
    # run's prefix found only now appeared after a test's check. Known, rare,
    # not yet explained (a ring segment of test_ring's, seen in about 1 run
    # in 3 under load): removed here and reported, so the machine is left clean.
    import _util
    late = _util.ours()
    for e in late:
        try:
            os.unlink("/dev/shm/" + e)
        except OSError:
            pass
    if late:
        print(f"pipc unittest: WARNING: removed {len(late)} file(s) left in /dev/shm after their test's own check: {late}")
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped) + len(result.expectedFailures)
    passed = result.testsRun - failed - skipped
    print(f"pipc unittest ({sys.executable} {sys.version.split()[0]}, uid {os.getuid()}): "
          f"{passed} passed, {failed} failed, {skipped} skipped")
    if out is not None:
        with open(out, "w") as f:
            json.dump({"passed": passed, "failed": failed, "skipped": skipped}, f)
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
