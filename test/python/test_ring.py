"""pipc.Queue on the shared-memory ring (transport='shm'): FIFO, Empty/Full,
timeouts, wrap-around, codecs, threads, crash recovery of a SIGKILLed Python
process (lock and journal), waiter-count give-back, hostile files."""
import errno
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
from pipc import _ring


def _quiet_unlink(name):
    try:
        pipc.Queue.unlink(name)
    except OSError:
        pass


class RingTest(IPCTestCase):
    def make(self, tag="r", **kw):
        kw.setdefault("transport", "shm")
        kw.setdefault("capacity", 4096)
        q = pipc.Queue(unique(tag), **kw)
        self.addCleanup(q.close)
        self.addCleanup(lambda: _quiet_unlink(q.name))
        return q

    def test_fifo_nowait_sizes_and_attributes(self):
        q = self.make()
        self.assertEqual((q.transport, q.capacity, q.maxsize, q.max_message_size), ("shm", 4096, 0, 4088))
        self.assertTrue(q.empty())
        for i in range(20):
            q.put({"i": i, "s": "é" * i})
        self.assertEqual(q.qsize(), 20)
        self.assertEqual([q.get_nowait() for _ in range(20)], [{"i": i, "s": "é" * i} for i in range(20)])
        with self.assertRaises(pipc.Empty):
            q.get_nowait()
        t0 = time.monotonic()
        with self.assertRaises(pipc.Empty):
            q.get(timeout=0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertEqual(os.stat(_ring.path_of(q.name)).st_size, 33024 + 4096)
        self.assertEqual(os.stat(_ring.path_of(q.name)).st_mode & 0o777, 0o600)

    def test_wraps_around_many_times_exact(self):
        q = self.make(capacity=512)
        for i in range(3000):
            item = "x" * (i * 7 % 90)
            q.put(item, timeout=5)
            if i % 3 == 2:
                for j in (i - 2, i - 1, i):
                    self.assertEqual(q.get_nowait(), "x" * (j * 7 % 90))
        self.assertTrue(q.empty())

    def test_full_by_maxsize_and_by_bytes(self):
        q = self.make(maxsize=2)
        q.put(1)
        q.put(2)
        self.assertTrue(q.full())
        with self.assertRaises(pipc.Full):
            q.put_nowait(3)
        t0 = time.monotonic()
        with self.assertRaises(pipc.Full):
            q.put(3, timeout=0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertEqual([q.get(), q.get()], [1, 2])
        b = self.make(capacity=64, codec="raw")
        b.put(b"a" * 48)
        with self.assertRaises(pipc.Full):
            b.put_nowait(b"b")
        self.assertEqual(b.get_nowait(), b"a" * 48)
        with self.assertRaises(pipc.IPCError) as cm:
            b.put(b"c" * 57)
        self.assertEqual(cm.exception.code, "EMSGSIZE")
        b.put(b"c" * 56)
        self.assertEqual(b.get_nowait(), b"c" * 56)

    def test_blocking_get_woken_by_another_thread(self):
        q = self.make()
        got = []
        t = threading.Thread(target=lambda: got.append(q.get(timeout=10)))
        t.start()
        time.sleep(0.1)
        t0 = time.monotonic()
        q.put("wake")
        t.join(10)
        self.assertEqual(got, ["wake"])
        self.assertLess(time.monotonic() - t0, 1.0)
        w = _ring.Ring  # the waiter counts are given back
        self.assertEqual(q._ring._ld(_ring.GET_WAITERS), 0)
        self.assertIsNotNone(w)

    def test_blocking_put_woken_by_get(self):
        q = self.make(maxsize=1)
        q.put(0)
        done = []
        t = threading.Thread(target=lambda: (q.put(1, timeout=10), done.append(True)))
        t.start()
        time.sleep(0.1)
        self.assertEqual(q.get(), 0)
        t.join(10)
        self.assertEqual(done, [True])
        self.assertEqual(q.get(timeout=1), 1)
        self.assertEqual(q._ring._ld(_ring.PUT_WAITERS), 0)

    def test_kind_selection_and_errors(self):
        q = self.make()
        same = pipc.Queue(q.name, create=False)
        self.assertEqual(same.transport, "shm")
        same.close()
        with self.assertRaises(FileExistsError) as cm:
            pipc.Queue(q.name, transport="mq")
        self.assertIn("shared-memory queue (transport 'shm') exists", str(cm.exception))
        with self.assertRaises(FileExistsError):
            pipc.Queue(q.name, exclusive=True)
        with self.assertRaises(pipc.IPCError) as cm:
            pipc.Queue(q.name, capacity=8192)
        self.assertEqual(cm.exception.code, "EINVAL")
        with self.assertRaises(pipc.IPCError) as cm:
            pipc.Queue(q.name, maxsize=3)
        self.assertEqual(cm.exception.code, "EINVAL")
        with self.assertRaises(TypeError):
            pipc.Queue(q.name, max_message_size=100, transport="shm")
        with self.assertRaises(ValueError):
            pipc.Queue(unique("cap"), capacity=8)
        with self.assertRaises(ValueError):
            pipc.Queue(unique("t"), transport="ring")
        with self.assertRaises(pipc.IPCError) as cm:
            q.put(1, priority=3)
        self.assertEqual(cm.exception.errno, errno.ENOTSUP)
        with self.assertRaises(FileNotFoundError):
            pipc.Queue(unique("none"), create=False)
        n = unique("dflt")
        d = pipc.Queue(n)
        self.assertEqual((d.transport, d.capacity), ("shm", 8 * 1024 * 1024))
        d.close()
        pipc.Queue.unlink(n)
        with self.assertRaises(FileNotFoundError):
            pipc.Queue.unlink(n)
        q.close()
        with self.assertRaises(pipc.IPCError) as cm:
            q.get()
        self.assertEqual(cm.exception.code, "EBADF")
        with self.assertRaises(pipc.IPCError) as cm:
            q.put(1)
        self.assertEqual(cm.exception.code, "EBADF")

    def test_hostile_files(self):
        n = unique("hostile")
        path = _ring.path_of("/" + n)
        cases = [
            ("short", lambda: _write(path, b"\0" * 1000), "EINVAL"),
            ("garbage", lambda: _write(path, b"\xab" * (33024 + 4096)), "EINVAL"),
            ("size mismatch", lambda: _write_header(path, 4096, 33024 + 8192), "EINVAL"),
            ("symlink", lambda: os.symlink("/etc/passwd", path), "ELOOP"),
            ("directory", lambda: os.mkdir(path), "EISDIR"),
        ]
        for what, make, code in cases:
            make()
            try:
                with self.assertRaises(pipc.IPCError, msg=what) as cm:
                    pipc.Queue(n, transport="shm")
                self.assertEqual(cm.exception.code, code, what)
            finally:
                if os.path.isdir(path) and not os.path.islink(path):
                    os.rmdir(path)
                else:
                    os.unlink(path)
        self.assertFalse(os.path.lexists(path))

    def test_corrupt_state_is_eproto_not_a_crash(self):
        q = self.make()
        q.put("a")
        struct.pack_into("<i", q._ring._mm, _ring.COUNT, 1000)
        with self.assertRaises(pipc.IPCError) as cm:
            q.get_nowait()
        self.assertEqual(cm.exception.code, "EPROTO")

    def test_sigkill_holding_the_lock_mid_put_is_rolled_back(self):
        q = self.make()
        q.put("before")
        # A child that takes the internal lock, opens the journal, scribbles
        # half a change and is SIGKILLed: the next lock taker rolls it back.
        code = f"""
import os, sys, struct, signal
sys.path.insert(0, {os.path.join(ROOT, 'python')!r})
import pipc
from pipc import _ring
q = pipc.Queue({q.name!r}, create=False)
r = q._ring
r._lock()
r._begin(r._ld(_ring.HEAD), r._ld(_ring.TAIL), r._ld(_ring.USED), r._ld(_ring.COUNT))
r._st(_ring.COUNT, 7)
r._st(_ring.TAIL, 800)
print("locked", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
        self.assertIn("locked", p.stdout)
        self.assertNotEqual(q._ring._ld(_ring.LOCK), 0)
        t0 = time.monotonic()
        self.assertEqual(q.get(timeout=5), "before")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(q.qsize(), 0)
        q.put("after")
        self.assertEqual(q.get_nowait(), "after")

    def test_dead_sleepers_waiter_shares_are_taken_back(self):
        q = self.make()
        code = f"""
import sys
sys.path.insert(0, {os.path.join(ROOT, 'python')!r})
import pipc
q = pipc.Queue({q.name!r}, create=False)
print("waiting", flush=True)
q.get()
"""
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), "waiting")
            deadline = time.monotonic() + 5
            while q._ring._ld(_ring.GET_WAITERS) == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertEqual(q._ring._ld(_ring.GET_WAITERS), 1)
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
        # Its slot's share comes back when a new handle claims that slot; the
        # next handle of a process with the same pid % 512 would; we claim them all.
        handles = [pipc.Queue(q.name, create=False) for _ in range(3)]
        for h in handles:
            h.close()
        mine = [pipc.Queue(q.name, create=False) for _ in range(_ring.SLOT_COUNT - 1)]
        try:
            self.assertEqual(q._ring._ld(_ring.GET_WAITERS), 0)
        finally:
            for h in mine:
                h.close()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _write_header(path, cap, size):
    with open(path, "wb") as f:
        f.write(b"\0" * size)
    with open(path, "r+b") as f:
        f.write(struct.pack("<7iIi", _ring.MAGIC_VALUE, 1, 2, 256, 512, 64, 33024, cap, 0))


if __name__ == "__main__":
    unittest.main()
