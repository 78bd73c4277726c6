"""pipc.SharedMemory, Value and SharedArray: layout, atomics across
processes, hostile files at the name, no resource-tracker unlink."""
import os
import struct
import subprocess
import sys
import unittest

from _util import ROOT, IPCTestCase, unique

import pipc

PY = sys.executable
ADDER = (
    "import sys; sys.path.insert(0, {root!r}); import pipc;"
    "v = pipc.Value({tc!r}, name={name!r}, create=False)\n"
    "for _ in range({n}): v.add(1)\n"
    "v.close()"
)


class SharedMemoryTest(IPCTestCase):
    def test_create_open_same_bytes(self):
        n = unique("seg")
        a = pipc.SharedMemory(n, create=True, size=5000)
        b = pipc.SharedMemory(n)
        try:
            self.assertTrue(a.created)
            self.assertFalse(b.created)
            self.assertEqual((a.name, a.size, b.size), (n, 5000, 5000))
            a.buf[100:105] = b"hello"
            self.assertEqual(bytes(b.buf[100:105]), b"hello")
            self.assertEqual(os.stat(f"/dev/shm/{n}").st_mode & 0o777, 0o600)
        finally:
            b.close()
            a.close()
            a.unlink()

    def test_stdlib_shapes_and_errors(self):
        n = unique("errs")
        with self.assertRaises(FileNotFoundError):
            pipc.SharedMemory(n)
        a = pipc.SharedMemory(n, create=True, size=10)
        with self.assertRaises(FileExistsError):
            pipc.SharedMemory(n, create=True, size=10)
        c = pipc.SharedMemory(n, create=True, size=10, exclusive=False)
        self.assertFalse(c.created)
        c.close()
        with self.assertRaises(ValueError):
            pipc.SharedMemory(unique(), create=True, size=0)
        with self.assertRaises(ValueError):
            pipc.SharedMemory()
        r = pipc.SharedMemory(n, read_only=True)
        with self.assertRaises(TypeError):
            r.buf[0] = 1
        r.close()
        a.close()
        with self.assertRaises(pipc.IPCError) as cm:
            a.buf
        self.assertEqual(cm.exception.code, "EBADF")
        a.close()
        a.unlink()
        with self.assertRaises(FileNotFoundError):
            pipc.SharedMemory.unlink(n)

    def test_random_name(self):
        s = pipc.SharedMemory(create=True, size=64)
        try:
            self.assertRegex(s.name, r"^psm_[0-9a-f]{8}$")
        finally:
            s.close()
            s.unlink()

    def test_hostile_files_at_the_name(self):
        n = unique("hostile")
        target = "/dev/shm/" + unique("t")
        with open(target, "wb") as f:
            f.write(b"x" * 100)
        os.symlink(target, f"/dev/shm/{n}")
        try:
            with self.assertRaises(pipc.IPCError) as cm:
                pipc.SharedMemory(n)
            self.assertEqual(cm.exception.code, "ELOOP")
        finally:
            os.unlink(f"/dev/shm/{n}")
            os.unlink(target)
        os.mkfifo(f"/dev/shm/{n}", 0o600)
        try:
            with self.assertRaises(pipc.IPCError) as cm:
                pipc.SharedMemory(n)
            self.assertEqual(cm.exception.code, "EINVAL")
        finally:
            os.unlink(f"/dev/shm/{n}")
        with open(f"/dev/shm/{n}", "wb"):
            pass
        try:
            with self.assertRaises(pipc.IPCError) as cm:
                pipc.SharedMemory(n)
            self.assertEqual(cm.exception.code, "EINVAL")  # empty: nothing to map
            with self.assertRaises(pipc.IPCError) as cm:
                pipc.Value("q", name=n, create=False)
            self.assertEqual(cm.exception.code, "EINVAL")  # smaller than one element
        finally:
            os.unlink(f"/dev/shm/{n}")

    def test_another_owners_segment_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a file owned by another uid")
        n = unique("owner")
        s = pipc.SharedMemory(n, create=True, size=16)
        os.chown(f"/dev/shm/{n}", 65534, 65534)
        try:
            with self.assertRaises(PermissionError):
                pipc.SharedMemory(n)
            pipc.SharedMemory(n, owner="any").close()
        finally:
            s.close()
            s.unlink()

    def test_an_opener_exiting_does_not_unlink(self):
        n = unique("tracker")
        s = pipc.SharedMemory(n, create=True, size=16)
        code = f"import sys; sys.path.insert(0, {os.path.join(ROOT, 'python')!r}); import pipc; pipc.SharedMemory({n!r}).close()"
        subprocess.run([PY, "-c", code], check=True)
        self.assertTrue(os.path.exists(f"/dev/shm/{n}"))
        s.close()
        s.unlink()


class CellsTest(IPCTestCase):
    def test_value_layout_and_atomics(self):
        n = unique("val")
        v = pipc.Value("i", -5, name=n)
        try:
            with open(f"/dev/shm/{n}", "rb") as f:
                self.assertEqual(struct.unpack("i", f.read()), (-5,))
            self.assertEqual(v.add(10), -5)
            self.assertEqual(v.sub(1), 5)
            self.assertEqual(v.exchange(100), 4)
            self.assertEqual(v.compare_exchange(1, 2), 100)
            self.assertEqual(v.compare_exchange(100, 2), 100)
            self.assertEqual(v.load(), 2)
            self.assertEqual(v.or_(0b101), 2)
            self.assertEqual(v.and_(0b110), 0b111)
            self.assertEqual(v.xor(0b11), 0b110)
            self.assertEqual(v.value, 0b101)
            v.value = 2**31 - 1
            self.assertEqual(v.add(1), 2**31 - 1)
            self.assertEqual(v.value, -(2**31))  # wraps
            with self.assertRaises(OverflowError):
                v.value = 2**31
            with self.assertRaises(TypeError):
                v.value = 1.5
            w = pipc.Value("i", 99, name=n)  # exists: the initial value is ignored
            self.assertEqual(w.value, -(2**31))
            w.close()
        finally:
            v.close()
            v.unlink()

    def test_every_typecode_round_trips(self):
        for tc, vals in {"b": [-128, 127], "B": [255, 0], "h": [-32768, 1], "H": [65535, 2], "i": [-1, 3],
                         "I": [2**32 - 1, 4], "l": [-(2**63), 5], "L": [2**64 - 1, 6], "q": [2**63 - 1, -7],
                         "Q": [2**64 - 1, 8], "f": [1.5, -2.0], "d": [0.1, -1e300]}.items():
            with self.subTest(tc=tc):
                n = unique("tc")
                a = pipc.SharedArray(tc, vals, name=n)
                b = pipc.SharedArray(tc, 2, name=n, create=False)
                self.assertEqual(b.tolist(), vals)
                self.assertEqual(os.stat(f"/dev/shm/{n}").st_size, 2 * struct.calcsize("=" + {"l": "q", "L": "Q"}.get(tc, tc)))
                b.close()
                a.close()
                a.unlink()

    def test_array_indexing_and_atomics(self):
        n = unique("arr")
        a = pipc.SharedArray("I", 4, name=n)
        try:
            self.assertEqual(len(a), 4)
            a[1] = 7
            a[2:4] = [8, 9]
            self.assertEqual(a[:], [0, 7, 8, 9])
            self.assertEqual(a[-1], 9)
            self.assertEqual(a.add(0, 5), 0)
            self.assertEqual(a.load(0), 5)
            self.assertEqual(a.sub(0, 6), 5)
            self.assertEqual(a[0], 2**32 - 1)
            with self.assertRaises(IndexError):
                a[4]
            with self.assertRaises(ValueError):
                a[0:2] = [1]
            self.assertEqual(list(a.array), a.tolist())
        finally:
            a.close()
            a.unlink()

    def test_floats_have_no_atomics_and_read_only_refuses_writes(self):
        n = unique("f")
        d = pipc.Value("d", 2.5, name=n)
        with self.assertRaises(TypeError):
            d.add(1)
        r = pipc.Value("d", name=n, read_only=True)
        self.assertEqual(r.value, 2.5)
        with self.assertRaises(PermissionError):
            r.value = 1.0
        r.close()
        d.close()
        d.unlink()
        n = unique("ro")
        v = pipc.Value("i", 3, name=n)
        r = pipc.Value("i", name=n, read_only=True)
        self.assertEqual(r.load(), 3)
        with self.assertRaises(PermissionError):
            r.add(1)
        r.close()
        v.close()
        with self.assertRaises(pipc.IPCError) as cm:
            v.add(1)
        self.assertEqual(cm.exception.code, "EBADF")
        v.unlink()

    def test_lock_by_the_same_name_and_unlink_removes_both(self):
        n = unique("lk")
        v = pipc.Value("i", 0, name=n)
        lock = v.get_lock()
        self.assertIs(v.get_lock(), lock)
        with lock:
            v.value += 1
        self.assertTrue(os.path.exists(f"/dev/shm/pipc.{n}.sem"))
        v.close()
        self.assertTrue(lock.closed)
        pipc.Value.unlink(n)
        self.assertFalse(os.path.exists(f"/dev/shm/pipc.{n}.sem"))
        self.assertFalse(os.path.exists(f"/dev/shm/{n}"))
        nolock = pipc.Value("i", name=unique("nolock"), lock=False)
        with self.assertRaises(TypeError):
            nolock.get_lock()
        nolock.close()
        nolock.unlink()

    def test_atomic_adds_from_four_processes_are_exact(self):
        for tc in ("i", "q", "H"):
            with self.subTest(tc=tc):
                n = unique("adds")
                v = pipc.Value(tc, 0, name=n)
                code = ADDER.format(root=os.path.join(ROOT, "python"), tc=tc, name=n, n=5000)
                procs = [subprocess.Popen([PY, "-c", code]) for _ in range(4)]
                self.assertEqual([p.wait() for p in procs], [0, 0, 0, 0])
                self.assertEqual(v.load(), 20000)
                v.close()
                v.unlink()


if __name__ == "__main__":
    unittest.main()
