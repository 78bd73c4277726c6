"""pipc.JoinableQueue: task_done/join counted across separate Python
processes on both transports (CPython's _TestQueue.test_task_done, ported),
join timeouts, too many task_done calls, dead consumers, hostile counters."""
import errno
import os
import signal
import subprocess
import sys
import time
import unittest

from _util import ROOT, IPCTestCase, unique

import pipc
from pipc.joinable import SEGMENT_BYTES, jq_path

PY = sys.executable
PRELUDE = f"import sys, time, os; sys.path.insert(0, {os.path.join(ROOT, 'python')!r}); import pipc\n"

# CPython's _test_task_done: get until None, task_done each (not the None).
WORKER = PRELUDE + """
q = pipc.JoinableQueue(sys.argv[1], create=False)
print('ready', flush=True)
n = 0
for obj in iter(q.get, None):
    time.sleep(0.02)
    n += 1
    t = time.monotonic_ns()  # before: join() may return (and stamp) before a stamp taken after
    q.task_done()
    print('t', t, flush=True)
print('done', n, flush=True)
q.close()
"""

# Gets K items, marks none done, waits to be killed.
DIE = PRELUDE + """
q = pipc.JoinableQueue(sys.argv[1], create=False)
for _ in range(int(sys.argv[2])):
    q.get(timeout=10)
print('got', flush=True)
time.sleep(60)
"""


def spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([PY, "-c", code, *args], stdout=subprocess.PIPE, text=True)


def quiet_unlink(name: str) -> None:
    try:
        pipc.JoinableQueue.unlink(name)
    except OSError:
        pass


class JoinableTest(IPCTestCase):
    def make(self, transport: str, tag: str = "jq", **kw) -> pipc.JoinableQueue:
        if transport == "mq":
            kw.setdefault("maxsize", 10)
            kw.setdefault("max_message_size", 256)
        q = pipc.JoinableQueue(unique(tag), transport=transport, **kw)
        self.addCleanup(lambda: quiet_unlink(q.name))
        self.addCleanup(q.close)
        return q

    def transports(self):
        for t in ("shm", "mq"):
            with self.subTest(transport=t):
                yield t

    def test_task_done(self):
        """_TestQueue.test_task_done: 4 consumer processes, 10 items; join()
        returns once all 10 are done, not before the last task_done."""
        for t in self.transports():
            q = self.make(t)
            workers = [spawn(WORKER, q.name) for _ in range(4)]
            try:
                for w in workers:
                    self.assertEqual(w.stdout.readline().strip(), "ready")
                for i in range(10):
                    q.put(i)
                self.assertEqual(q.unfinished_tasks, 10)
                self.assertTrue(q.join(timeout=20))
                joined = time.monotonic_ns()
                self.assertEqual(q.unfinished_tasks, 0)
                for _ in workers:
                    q.put(None)
                times, done = [], 0
                for w in workers:
                    for line in w.stdout:
                        kind, v = line.split()
                        if kind == "t":
                            times.append(int(v))
                        else:
                            done += int(v)
                            break
                    self.assertEqual(w.wait(20), 0)
                self.assertEqual(done, 10)
                self.assertEqual(len(times), 10)
                self.assertGreaterEqual(joined, max(times))  # not before the last task_done
                # the workers' sentinels were got and never marked done: written off at their close
                self.assertEqual(q.unfinished_tasks, 0)
            finally:
                for w in workers:
                    w.kill()
                    w.wait()
                    w.stdout.close()

    def test_join_timeout(self):
        for t in self.transports():
            q = self.make(t)
            q.put("x")
            t0 = time.monotonic()
            self.assertFalse(q.join(timeout=0.2))
            self.assertGreaterEqual(time.monotonic() - t0, 0.19)
            self.assertFalse(q.join(timeout=0))
            self.assertEqual(q.get(), "x")
            self.assertFalse(q.join(timeout=0.05))  # got, not done
            q.task_done()
            self.assertTrue(q.join(timeout=0))
            self.assertTrue(q.join())
            with self.assertRaises(ValueError):
                q.join(timeout=-1)
            with self.assertRaises(TypeError):
                q.join(timeout="1")

    def test_too_many_task_done_is_value_error(self):
        for t in self.transports():
            q = self.make(t)
            with self.assertRaises(ValueError):
                q.task_done()
            q.put("a")
            q.put("b")
            other = pipc.JoinableQueue(q.name, create=False)
            try:
                self.assertEqual(other.get(), "a")
                q.task_done()  # handed over: taken off the getter's count
                self.assertEqual(q.unfinished_tasks, 1)
                self.assertEqual(other.get(), "b")
                other.task_done()
                with self.assertRaises(ValueError):
                    other.task_done()
                with self.assertRaises(ValueError):
                    q.task_done()
                self.assertEqual(q.unfinished_tasks, 0)
            finally:
                other.close()

    def test_failed_put_is_not_counted(self):
        q = self.make("shm", maxsize=1)
        q.put(1)
        with self.assertRaises(pipc.Full):
            q.put_nowait(2)
        with self.assertRaises(ValueError):
            q.put(float("nan"))
        self.assertEqual(q.unfinished_tasks, 1)
        self.assertEqual(q.get_nowait(), 1)
        q.task_done()
        self.assertTrue(q.join(timeout=0))

    def test_dead_consumer_makes_join_raise_eownerdead(self):
        for t in self.transports():
            q = self.make(t)
            for i in range(5):
                q.put(i)
            c = spawn(DIE, q.name, "2")
            try:
                self.assertEqual(c.stdout.readline().strip(), "got")
                self.assertEqual(q.unfinished_tasks, 5)
                q.get()
                q.task_done()
                os.kill(c.pid, signal.SIGKILL)
                c.wait()
                t0 = time.monotonic()
                with self.assertRaises(pipc.TasksLostError) as cm:
                    q.join(timeout=10)
                self.assertLess(time.monotonic() - t0, 1.0)
                e = cm.exception
                self.assertIsInstance(e, pipc.IPCError)
                self.assertEqual((e.code, e.errno, e.lost, e.pid), ("EOWNERDEAD", errno.EOWNERDEAD, 2, c.pid))
                self.assertEqual(q.unfinished_tasks, 2)
                self.assertEqual(q.lost_tasks, 2)
                for _ in range(2):
                    q.get()
                    q.task_done()
                self.assertTrue(q.join(timeout=1))
            finally:
                c.kill()
                c.wait()
                c.stdout.close()

    def test_close_writes_off_what_the_handle_owes(self):
        q = self.make("shm")
        q.put(1)
        q.put(2)
        other = pipc.JoinableQueue(q.name, create=False)
        other.get()
        other.close()
        self.assertEqual(q.unfinished_tasks, 1)
        self.assertEqual(q.lost_tasks, 1)
        with self.assertRaises(pipc.IPCError) as cm:
            other.task_done()
        self.assertEqual(cm.exception.code, "EBADF")
        with self.assertRaises(pipc.IPCError) as cm:
            other.join(timeout=0)
        self.assertEqual(cm.exception.code, "EBADF")
        other.close()  # idempotent

    def test_name_rules(self):
        with self.assertRaises(ValueError):
            pipc.JoinableQueue("x" * 243)  # 255 - len("pipc." + ".barrier") = 242
        with self.assertRaises(ValueError):
            pipc.JoinableQueue("a/b")
        with self.assertRaises(TypeError):
            pipc.JoinableQueue(5)
        self.assertEqual(os.path.basename(jq_path("/w")), "pipc.w.jq")

    def test_hostile_counter_files(self):
        n = unique("hostile")
        path = jq_path("/" + n)

        def write(data: bytes) -> None:
            with open(path, "wb") as f:
                f.write(data)

        def header(kind: int) -> bytes:
            import struct
            return struct.pack("<6i", 0x43504950, 1, kind, 0, 256, 256) + b"\0" * (SEGMENT_BYTES - 24)

        cases = [
            ("short", lambda: write(b"\0" * 100), "EINVAL"),
            ("no header", lambda: write(b"\0" * SEGMENT_BYTES), "EINVAL"),
            ("an Event's segment", lambda: write(header(2)), "EINVAL"),
            ("symlink", lambda: os.symlink("/etc/passwd", path), "ELOOP"),
            ("directory", lambda: os.mkdir(path), "EISDIR"),
            ("fifo", lambda: os.mkfifo(path), "EINVAL"),
        ]
        try:
            for what, make, code in cases:
                make()
                try:
                    with self.assertRaises(pipc.IPCError, msg=what) as cm:
                        pipc.JoinableQueue(n)
                    self.assertEqual(cm.exception.code, code, what)
                    if what == "an Event's segment":
                        self.assertIn("is an Event, not a JoinableQueue counter", str(cm.exception.strerror))
                finally:
                    if os.path.isdir(path) and not os.path.islink(path):
                        os.rmdir(path)
                    else:
                        os.unlink(path)
                # the queue the constructor made first is closed again (no fd left), not removed
            self.assertFalse(os.path.lexists(path))
        finally:
            try:
                pipc.Queue.unlink(n)
            except OSError:
                pass

    def test_counter_of_another_owner_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a file owned by another uid")
        q = self.make("shm", "owner")
        os.chown(jq_path(q.name), 65534, 65534)
        os.chown(f"/dev/shm/pipc.{q.name[1:]}.queue", 65534, 65534)
        with self.assertRaises(PermissionError) as cm:
            pipc.JoinableQueue(q.name)
        self.assertEqual(cm.exception.code, "EPERM")
        pipc.JoinableQueue(q.name, owner=65534).close()


if __name__ == "__main__":
    unittest.main()
