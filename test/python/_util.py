"""Helpers of the pipc unittest suite: unique names, /dev/shm leak checks."""
import itertools
import os
import sys
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

PREFIX = f"pipc-pytest-{os.getpid()}-"
_counter = itertools.count(1)


def unique(tag: str = "x") -> str:
    """A name unique to this process and call."""
    return f"{PREFIX}{tag}-{next(_counter)}"


def ours() -> list:
    """Entries of /dev/shm made under this process's names."""
    return sorted(e for e in os.listdir("/dev/shm") if PREFIX in e)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class IPCTestCase(unittest.TestCase):
    """Checks that every test leaves /dev/shm and the descriptors as it found them."""

    def setUp(self) -> None:
        self._shm_before = ours()
        self._fds_before = fd_count()
        # Registered first, so it runs after every other cleanup of the test.
        self.addCleanup(self._check_leaks)

    def _check_leaks(self) -> None:
        leaked = [e for e in ours() if e not in self._shm_before]
        for e in leaked:
            try:
                os.unlink("/dev/shm/" + e)
            except OSError:
                pass
        self.assertEqual(leaked, [], "left in /dev/shm")
        self.assertEqual(fd_count(), self._fds_before, "descriptors leaked")
