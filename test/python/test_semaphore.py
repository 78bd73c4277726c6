"""pipc.Semaphore / BoundedSemaphore / Lock: both kinds, errors, threads, and
crash recovery between separate Python processes."""
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

from _util import ROOT, IPCTestCase, unique

import pipc
from pipc._robust import SEGMENT_BYTES

PY = sys.executable
HOLD = (
    "import sys, time; sys.path.insert(0, {root!r}); import pipc;"
    "s = pipc.{cls}({name!r}, create=False{extra}); s.acquire(); print('held', flush=True); time.sleep(60)"
)


def spawn_holder(name: str, cls: str = "Lock", extra: str = "") -> subprocess.Popen:
    p = subprocess.Popen([PY, "-c", HOLD.format(root=os.path.join(ROOT, "python"), cls=cls, name=name, extra=extra)],
                         stdout=subprocess.PIPE)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == b"held"
    return p


SPIN_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
import pipc
s = pipc.Semaphore({name!r}, create=False)
real_wait = s._rob.wait
def wait(deadline):
    if deadline is None:  # the untimed acquire below must be taken by the spin
        raise AssertionError("slept")
    return real_wait(deadline)
s._rob.wait = wait
t0 = time.monotonic(); got = s.acquire(timeout=0.05)
print("timeout", got, round(time.monotonic() - t0, 3), flush=True)
print("ready", flush=True)
t0 = time.monotonic(); got = s.acquire()
print("took", got, round(time.monotonic() - t0, 3), flush=True)
s.close()
"""


class SemaphoreBasics(IPCTestCase):
    def for_both(self):
        for robust in (True, False):
            with self.subTest(robust=robust):
                yield robust

    def test_acquire_release_value(self):
        for robust in self.for_both():
            n = unique("basic")
            s = pipc.Semaphore(n, 2, robust=robust)
            try:
                self.assertEqual(s.robust, robust)
                self.assertEqual(s.value, 2)
                self.assertTrue(s.acquire())
                self.assertTrue(s.acquire(block=False))
                self.assertFalse(s.acquire(block=False))
                t0 = time.monotonic()
                self.assertFalse(s.acquire(timeout=0.1))
                self.assertGreaterEqual(time.monotonic() - t0, 0.09)
                s.release(2)
                self.assertEqual(s.value, 2)
                with s:
                    self.assertEqual(s.value, 1)
                self.assertEqual(s.value, 2)
            finally:
                s.close()
                s.unlink()

    def test_same_object_from_two_handles(self):
        for robust in self.for_both():
            n = unique("two")
            a = pipc.Semaphore(n, 0, robust=robust)
            b = pipc.Semaphore(n, create=False, robust=robust)
            try:
                b.release(3)
                self.assertEqual(a.value, 3)
                self.assertTrue(a.acquire(timeout=1))
                self.assertEqual(b.value, 2)
            finally:
                a.close()
                b.close()
                pipc.Semaphore.unlink(n)

    def test_errors_in_pythons_terms(self):
        for robust in self.for_both():
            n = unique("err")
            with self.assertRaises(FileNotFoundError) as cm:
                pipc.Semaphore(n, create=False, robust=robust)
            self.assertIsInstance(cm.exception, pipc.IPCError)
            self.assertEqual(cm.exception.code, "ENOENT")
            s = pipc.Semaphore(n, robust=robust)
            with self.assertRaises(FileExistsError):
                pipc.Semaphore(n, exclusive=True, robust=robust)
            s.close()
            with self.assertRaises(pipc.IPCError) as cm:
                s.acquire()
            self.assertEqual(cm.exception.code, "EBADF")
            with self.assertRaises(pipc.IPCError):
                s.release()
            s.close()  # idempotent
            pipc.Semaphore.unlink(n)
            with self.assertRaises(FileNotFoundError):
                pipc.Semaphore.unlink(n)

    def test_bad_arguments(self):
        with self.assertRaises(TypeError):
            pipc.Semaphore(3)  # type: ignore[arg-type]
        for bad in ("", "/", "a/b", "x" * 300, ".."):
            with self.assertRaises(ValueError):
                pipc.Semaphore(bad)
        with self.assertRaises(ValueError):
            pipc.Semaphore(unique(), -1)
        with self.assertRaises(TypeError):
            pipc.Semaphore(unique(), 1.5)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            pipc.Semaphore(unique(), mode=0o1000)
        with self.assertRaises(ValueError):
            pipc.BoundedSemaphore(unique(), 3, max_value=2)
        n = unique("badwait")
        s = pipc.Semaphore(n)
        try:
            with self.assertRaises(ValueError):
                s.acquire(timeout=-1)
            with self.assertRaises(ValueError):
                s.release(0)
        finally:
            s.close()
            s.unlink()

    def test_bounded_and_lock(self):
        for robust in self.for_both():
            n = unique("bound")
            b = pipc.BoundedSemaphore(n, 2, robust=robust)
            try:
                self.assertEqual(b.max_value, 2)
                with self.assertRaises(ValueError):
                    b.release()
                self.assertEqual(b.value, 2)
                b.acquire()
                b.release()
            finally:
                b.close()
                b.unlink()
            n = unique("lock")
            lock = pipc.Lock(n, robust=robust)
            try:
                self.assertFalse(lock.locked())
                with lock:
                    self.assertTrue(lock.locked())
                    t1 = lock.token
                with lock:
                    t2 = lock.token
                if robust:
                    self.assertEqual(t2, t1 + 1)
                with self.assertRaises(ValueError):
                    lock.release()
            finally:
                lock.close()
                lock.unlink()

    def test_lock_refuses_an_unbounded_crash_safe_semaphore(self):
        n = unique("notlock")
        s = pipc.Semaphore(n, 1)
        try:
            with self.assertRaises(pipc.IPCError) as cm:
                pipc.Lock(n)
            self.assertEqual(cm.exception.code, "EINVAL")
            self.assertIn("unbounded", str(cm.exception))
        finally:
            s.close()
            s.unlink()

    def test_kind_mismatch_names_the_kind(self):
        n = unique("kind")
        p = pipc.Semaphore(n, robust=False)
        try:
            with self.assertRaises(FileExistsError) as cm:
                pipc.Semaphore(n)
            self.assertIn("plain POSIX semaphore", str(cm.exception))
        finally:
            p.close()
            p.unlink()
        r = pipc.Semaphore(n)
        try:
            with self.assertRaises(FileExistsError) as cm:
                pipc.Semaphore(n, robust=False)
            self.assertIn("crash-safe semaphore", str(cm.exception))
        finally:
            r.close()
            r.unlink()

    def test_thread_waiter_is_woken(self):
        for robust in self.for_both():
            n = unique("thread")
            s = pipc.Semaphore(n, 0, robust=robust)
            got = []
            t = threading.Thread(target=lambda: got.append(s.acquire(timeout=5)))
            t.start()
            time.sleep(0.2)
            self.assertEqual(got, [])
            s.release()
            t.join(5)
            self.assertEqual(got, [True])
            s.close()
            s.unlink()

    def test_close_wakes_a_sleeping_thread_with_ebadf(self):
        n = unique("closewake")
        s = pipc.Semaphore(n, 0)
        errs = []

        def wait():
            try:
                s.acquire(timeout=10)
            except pipc.IPCError as e:
                errs.append(e.code)

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.2)
        s.close()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(errs, ["EBADF"])
        pipc.Semaphore.unlink(n)


    def test_close_during_the_spin_ends_it_with_ebadf_and_close_does_not_fail(self):
        import pipc.semaphore as semmod
        n = unique("closespin")
        s = pipc.Semaphore(n, 0)
        errs = []
        saved = semmod.SPIN_S
        semmod.SPIN_S = 5.0  # the spin outlasts the close below

        def wait():
            try:
                s.acquire(timeout=10)
            except pipc.IPCError as e:
                errs.append(e.code)

        t = threading.Thread(target=wait)
        try:
            t.start()
            time.sleep(0.2)
            t0 = time.monotonic()
            s.close()  # must not fail while the other thread watches the mapping
            t.join(5)
            self.assertFalse(t.is_alive())
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertEqual(errs, ["EBADF"])
        finally:
            semmod.SPIN_S = saved
            pipc.Semaphore.unlink(n)

class HostileNames(IPCTestCase):
    def test_symlink_is_refused(self):
        n = unique("sym")
        target = "/dev/shm/" + unique("target")
        with open(target, "wb") as f:
            f.write(b"\0" * SEGMENT_BYTES)
        link = f"/dev/shm/pipc.{n}.sem"
        os.symlink(target, link)
        try:
            with self.assertRaises(pipc.IPCError) as cm:
                pipc.Semaphore(n)
            self.assertEqual(cm.exception.code, "ELOOP")
        finally:
            os.unlink(link)
            os.unlink(target)

    def test_wrong_size_or_header_is_einval(self):
        n = unique("size")
        path = f"/dev/shm/pipc.{n}.sem"
        for content in (b"\0" * 100, b"\0" * SEGMENT_BYTES):
            with open(path, "wb") as f:
                f.write(content)
            try:
                with self.assertRaises(pipc.IPCError) as cm:
                    pipc.Semaphore(n)
                self.assertEqual(cm.exception.code, "EINVAL")
            finally:
                os.unlink(path)

    def test_plain_semaphore_of_another_owner_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a file owned by another uid")
        n = unique("owner")
        s = pipc.Semaphore(n, robust=False, mode=0o666)
        os.chown(f"/dev/shm/sem.{n}", 65534, 65534)
        try:
            with self.assertRaises(PermissionError) as cm:
                pipc.Semaphore(n, robust=False)
            self.assertEqual(cm.exception.code, "EPERM")
            pipc.Semaphore(n, robust=False, owner="any").close()
            pipc.Semaphore(n, robust=False, owner=65534).close()
        finally:
            s.close()
            s.unlink()


    def test_crash_safe_semaphore_of_another_owner_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a file owned by another uid")
        n = unique("rowner")
        s = pipc.Semaphore(n, mode=0o666)
        os.chown(f"/dev/shm/pipc.{n}.sem", 65534, 65534)
        try:
            with self.assertRaises(PermissionError) as cm:
                pipc.Semaphore(n)
            self.assertEqual(cm.exception.code, "EPERM")
            with self.assertRaises(PermissionError):
                pipc.Semaphore(n, owner=0)
            pipc.Semaphore(n, owner="any").close()
            pipc.Semaphore(n, owner=65534).close()
        finally:
            s.close()
            s.unlink()

class CrashRecovery(IPCTestCase):
    def test_crash_safe_spin_takes_a_unit_released_meanwhile_and_keeps_the_timeout(self):
        # A child process with a 2 s spin (POSIX_IPC_WAIT_SPIN_US): a unit
        # released by this process 100 ms later is taken during the spin (its
        # futex wait is made to fail, so only the spin can take it), and a
        # timeout shorter than the spin still ends the acquire on time.
        n = unique("spin")
        s = pipc.Semaphore(n, 0)
        code = SPIN_CHILD.format(root=os.path.join(ROOT, "python"), name=n)
        env = dict(os.environ, POSIX_IPC_WAIT_SPIN_US="2000000")
        p = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, env=env, text=True)
        try:
            assert p.stdout is not None
            first = p.stdout.readline().split()
            self.assertEqual(first[:2], ["timeout", "False"])
            self.assertGreaterEqual(float(first[2]), 0.045)
            self.assertLess(float(first[2]), 1.0)  # not the 2 s spin
            self.assertEqual(p.stdout.readline().strip(), "ready")
            time.sleep(0.1)
            s.release()
            took = p.stdout.readline().split()
            self.assertEqual(took[:2], ["took", "True"], took)
            self.assertLess(float(took[2]), 1.9)  # inside the spin, not after it
            self.assertEqual(p.wait(10), 0)
        finally:
            p.kill()
            s.close()
            s.unlink()

    def test_killed_holder_is_recovered(self):
        n = unique("kill")
        lock = pipc.Lock(n)
        p = spawn_holder(n)
        try:
            self.assertTrue(lock.locked())
            self.assertFalse(lock.acquire(timeout=0.3))
            t0 = time.monotonic()
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            self.assertTrue(lock.acquire(timeout=3))
            self.assertLess(time.monotonic() - t0, 1.0)
            self.assertEqual(lock.recovered.pid, p.pid)
            self.assertGreater(lock.recovered.at, time.time() * 1e3 - 5000)
            lock.release()
            self.assertTrue(lock.acquire(block=False))
            self.assertIsNone(lock.recovered)
            lock.release()
        finally:
            p.kill()
            p.wait()
            if p.stdout:
                p.stdout.close()
            lock.close()
            lock.unlink()

    def test_stopped_holder_keeps_its_unit(self):
        n = unique("stop")
        lock = pipc.Lock(n)
        p = spawn_holder(n)
        try:
            os.kill(p.pid, signal.SIGSTOP)
            self.assertFalse(lock.acquire(timeout=1.0))
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            self.assertTrue(lock.acquire(timeout=2))
            lock.release()
        finally:
            p.kill()
            p.wait()
            if p.stdout:
                p.stdout.close()
            lock.close()
            lock.unlink()

    def test_close_while_holding_gives_back_marked_recovered(self):
        n = unique("closeheld")
        a = pipc.Lock(n)
        a.acquire()
        b = pipc.Lock(n)
        a.close()
        self.assertTrue(b.acquire(block=False))
        self.assertEqual(b.recovered.pid, os.getpid())
        b.release()
        b.close()
        b.unlink()


if __name__ == "__main__":
    unittest.main()
