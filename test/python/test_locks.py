"""pipc.locks: the Web Locks protocol between separate Python processes
(exclusive, shared, if_available, steal, queue order, timeouts, SIGKILLed
holders and waiters), threads of one process, errors and hostile segments."""
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import unittest

from _util import ROOT, IPCTestCase, unique

import pipc
from pipc import locks
from pipc.locks import SEGMENT_BYTES, lock_file_name, parse_lock_file_name

PY = sys.executable
PRELUDE = f"import sys, time, os; sys.path.insert(0, {os.path.join(ROOT, 'python')!r}); from pipc import locks\n"

# hold NAME MODE [if_available]: "held MODE" (or "null"), a line on stdin ends
# the block, then "released" (or "stolen").
HOLD = PRELUDE + """
name, mode = sys.argv[1], sys.argv[2]
try:
    with locks.request(name, mode, if_available=len(sys.argv) > 3) as lock:
        print('null' if lock is None else 'held ' + lock.mode, flush=True)
        sys.stdin.readline()
    print('released', flush=True)
except locks.AbortError:
    print('stolen', flush=True)
"""

# wait NAME MODE SECS: "requested", then "held MODE" once granted (or "timeout").
WAIT = PRELUDE + """
name, mode, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
print('requested', flush=True)
try:
    with locks.request(name, mode, timeout=secs) as lock:
        print('held ' + lock.mode, flush=True)
        sys.stdin.readline()
except TimeoutError:
    print('timeout', flush=True)
"""


def spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([PY, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


class LocksTest(IPCTestCase):
    def name(self, tag: str = "lk") -> str:
        n = unique(tag)
        self.addCleanup(lambda: _quiet_unlink(f"/dev/shm/{lock_file_name(n)}"))
        return n

    def child(self, code: str, *args: str) -> subprocess.Popen:
        p = spawn(code, *args)

        def end() -> None:
            p.kill()
            p.wait()
            p.stdin.close()
            p.stdout.close()
        self.addCleanup(end)
        return p

    def test_exclusive_between_processes(self):
        n = self.name()
        h = self.child(HOLD, n, "exclusive")
        self.assertEqual(h.stdout.readline().strip(), "held exclusive")
        with locks.request(n, if_available=True) as lock:
            self.assertIsNone(lock)
        with locks.request(n, "shared", if_available=True) as lock:
            self.assertIsNone(lock)
        with self.assertRaises(TimeoutError) as cm:
            with locks.request(n, timeout=0.2):
                self.fail("granted while another process holds it")
        self.assertEqual(cm.exception.code, "ETIMEDOUT")
        got = []
        t = threading.Thread(target=lambda: got.append(_timed(lambda: locks.request(n, timeout=10))))
        t.start()
        time.sleep(0.1)
        self.assertEqual(got, [])
        h.stdin.write("\n")
        h.stdin.flush()
        self.assertEqual(h.stdout.readline().strip(), "released")
        t.join(10)
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0][0], pipc.locks.WebLock(n, "exclusive"))

    def test_shared_holders_together_a_writer_alone(self):
        n = self.name()
        a = self.child(HOLD, n, "shared")
        b = self.child(HOLD, n, "shared")
        self.assertEqual(a.stdout.readline().strip(), "held shared")
        self.assertEqual(b.stdout.readline().strip(), "held shared")
        with locks.request(n, "shared", if_available=True) as lock:
            self.assertEqual(lock, locks.WebLock(n, "shared"))
            snap = locks.query()
            mine = [i for i in snap.held if i.name == n]
            self.assertEqual(sorted(i.pid for i in mine), sorted([a.pid, b.pid, os.getpid()]))
            self.assertEqual({i.mode for i in mine}, {"shared"})
            self.assertEqual({i.client_id for i in mine}, {str(a.pid), str(b.pid), str(os.getpid())})
        with locks.request(n, "exclusive", if_available=True) as lock:
            self.assertIsNone(lock)
        # a writer waits for both readers, then holds alone
        w = self.child(WAIT, n, "exclusive", "10")
        self.assertEqual(w.stdout.readline().strip(), "requested")
        time.sleep(0.2)
        snap = locks.query()
        self.assertIn(locks.LockInfo(n, "exclusive", str(w.pid), w.pid), snap.pending)
        # no writer starvation: a shared request now queues behind the writer
        with locks.request(n, "shared", if_available=True) as lock:
            self.assertIsNone(lock)
        for p in (a, b):
            p.stdin.write("\n")
            p.stdin.flush()
            self.assertEqual(p.stdout.readline().strip(), "released")
        self.assertEqual(w.stdout.readline().strip(), "held exclusive")
        with locks.request(n, "shared", if_available=True) as lock:
            self.assertIsNone(lock)
        w.stdin.write("\n")
        w.stdin.flush()
        self.assertEqual(w.wait(10), 0)
        with locks.request(n, "shared", if_available=True) as lock:
            self.assertIsNotNone(lock)

    def test_queue_order_shared_behind_older_exclusive(self):
        n = self.name()
        h = self.child(HOLD, n, "shared")
        self.assertEqual(h.stdout.readline().strip(), "held shared")
        order = []
        w = self.child(WAIT, n, "exclusive", "10")
        self.assertEqual(w.stdout.readline().strip(), "requested")
        time.sleep(0.2)  # the writer's request is published

        def reader() -> None:
            with locks.request(n, "shared", timeout=10):
                order.append(("reader", time.monotonic()))
        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.2)
        self.assertEqual(order, [])  # behind the writer, though only shared locks are held
        h.stdin.write("\n")
        h.stdin.flush()
        self.assertEqual(w.stdout.readline().strip(), "held exclusive")
        time.sleep(0.2)
        self.assertEqual(order, [])  # the writer holds it
        w.stdin.write("\n")
        w.stdin.flush()
        t.join(10)
        self.assertEqual([o[0] for o in order], ["reader"])

    def test_steal(self):
        n = self.name()
        h = self.child(HOLD, n, "exclusive")
        self.assertEqual(h.stdout.readline().strip(), "held exclusive")
        with self.assertRaises(locks.NotSupportedError):
            locks.request(n, "shared", steal=True)
        with locks.request(n, steal=True) as lock:
            self.assertEqual(lock, locks.WebLock(n, "exclusive"))
            held = [i for i in locks.query().held if i.name == n]
            self.assertEqual([i.pid for i in held], [os.getpid()])
            h.stdin.write("\n")
            h.stdin.flush()
            self.assertEqual(h.stdout.readline().strip(), "stolen")
            with locks.request(n, if_available=True) as again:
                self.assertIsNone(again)  # ours stays held
        with locks.request(n, if_available=True) as lock:
            self.assertIsNotNone(lock)

    def test_sigkilled_holder_hands_over_within_1s(self):
        for mode in ("exclusive", "shared"):
            with self.subTest(mode=mode):
                n = self.name()
                h = self.child(HOLD, n, mode)
                self.assertEqual(h.stdout.readline().strip(), "held " + mode)
                got = []
                t = threading.Thread(target=lambda: got.append(_timed(lambda: locks.request(n, timeout=10))))
                t.start()
                time.sleep(0.3)
                t0 = time.monotonic()
                os.kill(h.pid, signal.SIGKILL)
                t.join(10)
                self.assertEqual(len(got), 1)
                self.assertLess(got[0][1] - t0, 1.0)
                self.assertEqual(locks.query().held, [])

    def test_sigkilled_waiter_leaves_the_queue(self):
        n = self.name()
        with locks.request(n):
            w = self.child(WAIT, n, "exclusive", "10")
            self.assertEqual(w.stdout.readline().strip(), "requested")
            time.sleep(0.3)
            self.assertEqual([i.pid for i in locks.query().pending if i.name == n], [w.pid])
            os.kill(w.pid, signal.SIGKILL)
            w.wait()
        # the dead waiter's published (older) request no longer blocks ours
        t0 = time.monotonic()
        with locks.request(n, "shared", timeout=5) as lock:
            self.assertIsNotNone(lock)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(locks.query().pending, [])

    def test_threads_of_one_process(self):
        n = self.name()
        inside = {"shared": 0, "exclusive": 0}
        bad = []
        mu = threading.Lock()

        def worker(k: int) -> None:
            for i in range(30):
                mode = "exclusive" if (i + k) % 4 == 0 else "shared"
                with locks.request(n, mode, timeout=20):
                    with mu:
                        inside[mode] += 1
                        if inside["exclusive"] > 1 or (inside["exclusive"] and inside["shared"]):
                            bad.append(dict(inside))
                    time.sleep(0.001)
                    with mu:
                        inside[mode] -= 1
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(bad, [])
        self.assertEqual(locks.query(), locks.LockManagerSnapshot([], []))

    def test_timeout_leaves_the_queue(self):
        n = self.name()
        h = self.child(HOLD, n, "exclusive")
        self.assertEqual(h.stdout.readline().strip(), "held exclusive")
        with self.assertRaises(TimeoutError):
            with locks.request(n, "exclusive", timeout=0.2):
                pass
        self.assertEqual([i for i in locks.query().pending if i.name == n], [])
        h.stdin.write("\n")
        h.stdin.flush()
        self.assertEqual(h.stdout.readline().strip(), "released")
        with locks.request(n, if_available=True) as lock:
            self.assertIsNotNone(lock)

    def test_errors(self):
        with self.assertRaises(locks.NotSupportedError):
            locks.request("-reserved")
        self.assertTrue(issubclass(locks.NotSupportedError, ValueError))
        with self.assertRaises(locks.NotSupportedError):
            locks.request("x", steal=True, if_available=True)
        with self.assertRaises(locks.NotSupportedError):
            locks.request("x", timeout=1, if_available=True)
        with self.assertRaises(locks.NotSupportedError):
            locks.request("x", timeout=1, steal=True)
        with self.assertRaises(TypeError):
            locks.request(1)
        with self.assertRaises(TypeError):
            locks.request("x", if_available=1)
        with self.assertRaises(ValueError):
            locks.request("x", "read")
        with self.assertRaises(ValueError):
            locks.request("x" * 246)
        with self.assertRaises(ValueError):
            locks.request("x", timeout=-1)
        with self.assertRaises(ValueError):
            locks.request("\ud800")
        locks.request("x" * 245)  # fits; nothing is opened until the with
        n = self.name()
        r = locks.request(n)
        with r:
            pass
        with self.assertRaises(RuntimeError):
            with r:
                pass

    def test_file_names(self):
        self.assertEqual(lock_file_name("a/b%c\0"), "pipc.a%2Fb%25c%00.lock")
        self.assertEqual(parse_lock_file_name("pipc.a%2Fb%25c%00.lock"), "a/b%c\0")
        self.assertEqual(parse_lock_file_name("pipc..lock"), "")
        self.assertIsNone(parse_lock_file_name("pipc.a%41.lock"))
        self.assertIsNone(parse_lock_file_name("pipc.a.sem"))
        n = self.name() + "/with%odd"
        self.addCleanup(lambda: _quiet_unlink(f"/dev/shm/{lock_file_name(n)}"))
        with locks.request(n):
            self.assertTrue(os.path.exists(f"/dev/shm/{lock_file_name(n)}"))
            self.assertIn(n, [i.name for i in locks.query().held])

    def test_hostile_segments(self):
        n = self.name("hostile")
        path = f"/dev/shm/{lock_file_name(n)}"

        def write(data: bytes) -> None:
            with open(path, "wb") as f:
                f.write(data)

        def header(kind: int) -> bytes:
            return struct.pack("<6i", 0x43504950, 1, kind, 0, 512, 256) + b"\0" * (SEGMENT_BYTES - 24)

        cases = [
            ("short", lambda: write(b"\0" * 100), "EINVAL"),
            ("no header", lambda: write(b"\0" * SEGMENT_BYTES), "EINVAL"),
            ("a semaphore's segment", lambda: write(header(1)), "EINVAL"),
            ("symlink", lambda: os.symlink("/etc/passwd", path), "ELOOP"),
            ("directory", lambda: os.mkdir(path), "EISDIR"),
            ("fifo", lambda: os.mkfifo(path), "EINVAL"),
        ]
        for what, make, code in cases:
            make()
            try:
                with self.assertRaises(pipc.IPCError, msg=what) as cm:
                    with locks.request(n):
                        pass
                self.assertEqual(cm.exception.code, code, what)
                snap = locks.query()  # skips what it cannot read, never fails
                self.assertNotIn(n, [i.name for i in snap.held + snap.pending])
            finally:
                if os.path.isdir(path) and not os.path.islink(path):
                    os.rmdir(path)
                else:
                    os.unlink(path)
        self.assertFalse(os.path.lexists(path))

    def test_segment_of_another_owner_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a file owned by another uid")
        n = self.name("owner")
        with locks.request(n):
            pass
        os.chown(f"/dev/shm/{lock_file_name(n)}", 65534, 65534)
        with self.assertRaises(PermissionError) as cm:
            with locks.request(n):
                pass
        self.assertEqual(cm.exception.code, "EPERM")
        with locks.request(n, owner=65534) as lock:
            self.assertIsNotNone(lock)


def _timed(make):
    with make() as lock:
        return lock, time.monotonic()


def _quiet_unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


if __name__ == "__main__":
    unittest.main()
