"""pipc.Queue on POSIX message queues: Empty/Full, timeouts, priorities,
codecs, large items through side segments, hostile descriptors."""
import errno
import os
import threading
import time
import unittest

from _util import IPCTestCase, unique

import pipc
from pipc.queue import LARGE_MAGIC


class QueueTest(IPCTestCase):
    def make(self, tag="q", **kw):
        kw.setdefault("maxsize", 4)
        kw.setdefault("max_message_size", 256)
        q = pipc.Queue(unique(tag), **kw)
        self.addCleanup(q.close)
        self.addCleanup(lambda: _quiet_unlink(q.name))
        return q

    def test_put_get_fifo_and_priority(self):
        q = self.make()
        q.put({"a": 1})
        q.put([1, "two"])
        q.put("urgent", priority=9)
        self.assertEqual(q.qsize(), 3)
        self.assertEqual(q.get(), "urgent")
        self.assertEqual(q.last_priority, 9)
        self.assertEqual(q.get(), {"a": 1})
        self.assertEqual(q.get_nowait(), [1, "two"])
        self.assertTrue(q.empty())

    def test_empty_and_full(self):
        q = self.make(maxsize=2)
        with self.assertRaises(pipc.Empty):
            q.get_nowait()
        t0 = time.monotonic()
        with self.assertRaises(pipc.Empty):
            q.get(timeout=0.1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.09)
        q.put(1)
        q.put(2)
        self.assertTrue(q.full())
        with self.assertRaises(pipc.Full):
            q.put_nowait(3)
        with self.assertRaises(pipc.Full):
            q.put(3, timeout=0.05)
        with self.assertRaises(pipc.Full):
            q.put(3, block=False)

    def test_blocked_get_wakes_on_put_from_a_thread(self):
        q = self.make()
        got = []
        t = threading.Thread(target=lambda: got.append(q.get(timeout=5)))
        t.start()
        time.sleep(0.1)
        q.put("hi")
        t.join(5)
        self.assertEqual(got, ["hi"])

    def test_json_is_compact_utf8_like_json_stringify(self):
        q = self.make(codec="raw")
        j = pipc.Queue(q.name, create=False)
        self.addCleanup(j.close)
        j.put({"a": [1, 2], "s": "é"})
        self.assertEqual(q.get(), '{"a":[1,2],"s":"é"}'.encode())
        with self.assertRaises(ValueError):
            j.put(float("nan"))
        with self.assertRaises(TypeError):
            j.put(b"bytes")
        with self.assertRaises(TypeError):
            q.put("not bytes")

    def test_large_items_through_side_segments(self):
        q = self.make(max_message_size=128)
        big = {"blob": "y" * 100_000}
        q.put(big)
        segs = [e for e in os.listdir("/dev/shm") if e.startswith("pipc-mq." + q.name[1:] + ".")]
        self.assertEqual(len(segs), 1)
        st = os.stat("/dev/shm/" + segs[0])
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(q.get(), big)
        self.assertEqual([e for e in os.listdir("/dev/shm") if e in segs], [])

    def test_an_item_starting_with_the_magic_travels_as_a_segment(self):
        q = self.make(codec="raw", max_message_size=128)
        q.put(LARGE_MAGIC + b"abc")
        self.assertEqual(q.get(), LARGE_MAGIC + b"abc")

    def test_full_large_put_removes_its_segment(self):
        q = self.make(maxsize=1, max_message_size=128)
        q.put(1)
        with self.assertRaises(pipc.Full):
            q.put("z" * 1000, block=False)
        self.assertEqual([e for e in os.listdir("/dev/shm") if e.startswith("pipc-mq." + q.name[1:])], [])

    def test_forged_descriptors_are_refused(self):
        q = self.make(codec="raw", max_message_size=256)
        raw = pipc.Queue(q.name, create=False, codec="raw")
        self.addCleanup(raw.close)
        # a descriptor naming a file that is not this queue's segment
        victim = "/dev/shm/" + unique("victim")
        with open(victim, "wb") as f:
            f.write(b"keep")
        self.addCleanup(os.unlink, victim)
        q._send(LARGE_MAGIC + (4).to_bytes(8, "little") + ("/" + os.path.basename(victim)).encode(), 0, 1)
        with self.assertRaises(pipc.IPCError) as cm:
            raw.get(timeout=1)
        self.assertEqual(cm.exception.code, "EINVAL")
        self.assertTrue(os.path.exists(victim))
        # a segment of the right name but the wrong length
        seg = f"pipc-mq.{q.name[1:]}.{os.getpid()}-999-abcdef"
        with open("/dev/shm/" + seg, "wb") as f:
            f.write(b"short")
        q._send(LARGE_MAGIC + (500).to_bytes(8, "little") + ("/" + seg).encode(), 0, 1)
        with self.assertRaises(pipc.IPCError) as cm:
            raw.get(timeout=1)
        self.assertEqual(cm.exception.code, "EIO")
        self.assertFalse(os.path.exists("/dev/shm/" + seg))
        # a symlink at a segment's name
        seg2 = f"pipc-mq.{q.name[1:]}.{os.getpid()}-1000-abcdef"
        os.symlink(victim, "/dev/shm/" + seg2)
        q._send(LARGE_MAGIC + (4).to_bytes(8, "little") + ("/" + seg2).encode(), 0, 1)
        with self.assertRaises(pipc.IPCError) as cm:
            raw.get(timeout=1)
        self.assertEqual(cm.exception.code, "EINVAL")
        self.assertFalse(os.path.lexists("/dev/shm/" + seg2))
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), b"keep")

    def test_open_errors(self):
        n = unique("noq")
        with self.assertRaises(FileNotFoundError):
            pipc.Queue(n, create=False)
        q = self.make()
        with self.assertRaises(FileExistsError):
            pipc.Queue(q.name, exclusive=True)
        with self.assertRaises(pipc.IPCError) as cm:
            pipc.Queue(q.name, maxsize=3)
        self.assertEqual(cm.exception.code, "EINVAL")
        with self.assertRaises(FileExistsError) as cm:
            pipc.Queue(q.name, transport="shm")
        self.assertEqual(cm.exception.errno, errno.EEXIST)
        self.assertIn("a POSIX message queue (transport 'mq') exists", str(cm.exception))
        with self.assertRaises(ValueError):
            pipc.Queue(q.name, codec="v8")
        with self.assertRaises(ValueError):
            q.put(1, priority=40000)
        q.close()
        with self.assertRaises(pipc.IPCError) as cm:
            q.get()
        self.assertEqual(cm.exception.code, "EBADF")

    def test_unlink_removes_pending_segments(self):
        q = self.make(max_message_size=128)
        q.put("w" * 5000)
        pipc.Queue.unlink(q.name)
        self.assertEqual([e for e in os.listdir("/dev/shm") if e.startswith("pipc-mq." + q.name[1:])], [])
        with self.assertRaises(FileNotFoundError):
            pipc.Queue.unlink(q.name)


def _quiet_unlink(name):
    try:
        pipc.Queue.unlink(name)
    except FileNotFoundError:
        pass


if __name__ == "__main__":
    unittest.main()
