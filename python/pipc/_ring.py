"""The shared-memory ring of a ``'shm'`` Queue (``/dev/shm/pipc.NAME.queue``),
speaking docs/api.md "Shared-memory queue: segment layout and protocol" word
for word, as native/ring/ring.cc does: records in one mapping, an internal
lock word whose holder is known by its slot's open-file-description lock, an
undo journal of head/tail/used/count, and futex sequence words with waiter
counts (so nobody polls and nobody makes a needless FUTEX_WAKE).

A Python process SIGKILLed anywhere in a put or get is rolled back by the
next Node, C or Python peer that takes the lock, and the reverse.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import mmap
import os
import platform
import stat
import struct
import threading
import time
from typing import Optional

from . import _libc as C
from ._errors import IPCError, closed_error, ipc_error

# Header byte offsets.
MAGIC, VERSION, KIND, SLOT_BASE, SLOTS, SLOT_SIZE, DATA_OFF, CAPACITY, MAXSIZE = 0, 4, 8, 12, 16, 20, 24, 28, 32
LOCK, LOCK_WAITERS = 64, 68
HEAD, TAIL, USED, COUNT, JOURNAL, JHEAD, JTAIL, JUSED, JCOUNT = 128, 132, 136, 140, 144, 148, 152, 156, 160
PUT_SEQ, GET_WAITERS, GET_SEQ, PUT_WAITERS = 192, 196, 224, 228
# Slot words (byte offsets within a slot).
S_PID, S_GET_WAITING, S_PUT_WAITING = 0, 4, 8

MAGIC_VALUE = 0x51504950  # "PIPQ"
LAYOUT_VERSION = 1
KIND_QUEUE = 2
HEADER_BYTES = 256
SLOT_COUNT = 512
SLOT_BYTES = 64
DATA_START = HEADER_BYTES + SLOT_COUNT * SLOT_BYTES  # 33,024
MIN_CAPACITY = 64
MAX_CAPACITY = 1 << 30
DEFAULT_CAPACITY = 8 * 1024 * 1024
RECORD_HEADER = 8
WRAP = 0xFFFFFFFF
CHECK_S = 0.25  # longest futex sleep: the periodic re-check of a waiter
_TSO = platform.machine() in ("x86_64", "AMD64", "i386", "i686")
_Words = ctypes.c_int32 * (DATA_START // 4)
_REC = struct.Struct("<I")


def path_of(name: str) -> str:
    """``'/jobs'`` -> ``/dev/shm/pipc.jobs.queue``."""
    return f"/dev/shm/pipc.{name[1:]}.queue"


def align8(n: int) -> int:
    return (n + 7) & ~7


def _slot_offset(sid: int) -> int:
    return HEADER_BYTES + (sid - 1) * SLOT_BYTES


def _create_and_link(path: str, mode: int, cap: int, maxsize: int) -> int:
    """Makes the segment under no name, writes the header (magic last), then
    links it into place: nobody ever sees a half-made header."""
    fd = os.open("/dev/shm", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, mode)
    try:
        os.ftruncate(fd, DATA_START + cap)
        with mmap.mmap(fd, HEADER_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mm:
            struct.pack_into("<8i", mm, VERSION, LAYOUT_VERSION, KIND_QUEUE, HEADER_BYTES, SLOT_COUNT, SLOT_BYTES,
                             DATA_START, cap, maxsize)
            w = ctypes.c_int32.from_buffer(mm)
            C.store32(ctypes.addressof(w), MAGIC_VALUE)  # last
            del w
        C.link_fd(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def header_problem(mm: mmap.mmap, size: int) -> str:
    """'' when the mapped header is a queue's, else what is wrong (as ring.cc says it)."""
    magic, version, kind, sbase, slots, ssize, doff, cap, maxsize = struct.unpack_from("<7iIi", mm, 0)
    if magic != MAGIC_VALUE:
        return "is not a posix-ipc queue segment (bad magic)"
    if version != LAYOUT_VERSION:
        return f"has queue layout version {version}, not {LAYOUT_VERSION}"
    if kind != KIND_QUEUE or sbase != HEADER_BYTES or slots != SLOT_COUNT or ssize != SLOT_BYTES or doff != DATA_START:
        return "has a corrupt queue header"
    if cap < MIN_CAPACITY or cap > MAX_CAPACITY or cap & 7 or DATA_START + cap != size or maxsize < 0:
        return f"has a corrupt queue header (capacity {cap} for a file of {size} bytes)"
    return ""


class Ring:
    """One open ring segment and the slot this handle owns. A handle's
    operations are serialised by a thread lock; waiters sleep without it."""

    def __init__(self, name: str, create: bool, exclusive: bool, mode: int, cap: int, maxsize: int,
                 owner: C.Owner) -> None:
        self.name = name
        self.created = False
        self._mu = threading.Lock()
        self._sleepers = 0
        self._closed = False
        self._fd = -1
        self._mm: Optional[mmap.mmap] = None
        path = path_of(name)
        fd = -1
        syscall = "open"
        try:
            fd, self.created = C.open_or_create(path, name, create, exclusive, lambda: _create_and_link(path, mode, cap, maxsize))
            syscall = "fstat"
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ipc_error(_errno.EINVAL, "fstat", name, f"'{path}' is not a regular file")
            if not self.created:
                C.check_owner(st, owner, "open", name)
            if st.st_size < DATA_START + MIN_CAPACITY or st.st_size > DATA_START + MAX_CAPACITY:
                raise ipc_error(_errno.EINVAL, "fstat", name,
                                f"'{path}' holds {st.st_size} bytes, which no queue segment does")
            syscall = "mmap"
            self._mm = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            self._fd = fd
            fd = -1
            problem = header_problem(self._mm, st.st_size)
            if problem:
                raise ipc_error(_errno.EINVAL, "mmap", name, f"'{path}' {problem}")
        except BaseException as e:
            if fd >= 0:
                os.close(fd)
            self._unmap()
            if isinstance(e, OSError) and not isinstance(e, IPCError):
                if e.errno == _errno.ELOOP:
                    raise ipc_error(_errno.ELOOP, syscall, name,
                                    f"'{path}' is a symbolic link, which is never followed") from None
                raise ipc_error(e.errno or _errno.EIO, syscall, name) from None
            raise
        self.mode = stat.S_IMODE(st.st_mode)
        self.uid = st.st_uid
        self.cap = struct.unpack_from("<I", self._mm, CAPACITY)[0]
        self.maxsize = struct.unpack_from("<i", self._mm, MAXSIZE)[0]
        self._w = _Words.from_buffer(self._mm)
        self._base = ctypes.addressof(self._w)
        self._data = memoryview(self._mm)[DATA_START:]
        self.slot = 0
        start = os.getpid() % SLOT_COUNT
        try:
            for i in range(SLOT_COUNT):
                sid = 1 + (start + i) % SLOT_COUNT
                if C.ofd_trylock(self._fd, _slot_offset(sid)):
                    self.slot = sid
                    break
        except OSError as e:
            self._unmap()
            raise ipc_error(e.errno or _errno.EIO, "fcntl", name) from None
        if self.slot == 0:
            self._unmap()
            raise ipc_error(_errno.ENOSPC, "fcntl", name, "all 512 slots of this queue are in use")
        so = _slot_offset(self.slot)
        # A dead previous owner of our slot that held the internal lock left our id in it.
        if C.cas32(self._a(LOCK), self.slot, self.slot):
            self._rollback()
            self._unlock()
        # Waiters of a previous owner killed in its sleep: take their shares back.
        C.add32(self._a(GET_WAITERS), -C.atomic_rmw("exchange", self._a(so + S_GET_WAITING), 4, 0))
        C.add32(self._a(PUT_WAITERS), -C.atomic_rmw("exchange", self._a(so + S_PUT_WAITING), 4, 0))
        self._st(so + S_PID, os.getpid())

    # -- words -------------------------------------------------------------

    def _a(self, off: int) -> int:
        return self._base + off

    # On x86 (total store order) an aligned 32-bit store or load through the
    # mapping is atomic and ordered with the others; the read-modify-writes
    # (CAS, add), which are full barriers, go through libatomic.
    if _TSO:
        def _st(self, off: int, value: int) -> None:
            self._w[off >> 2] = value

        def _ld(self, off: int) -> int:
            return self._w[off >> 2]  # type: ignore[no-any-return]
    else:  # pragma: no cover - not x86
        def _st(self, off: int, value: int) -> None:
            C.store32(self._base + off, value)

        def _ld(self, off: int) -> int:
            return C.load32(self._base + off)

    def _unmap(self) -> None:
        if hasattr(self, "_data"):
            self._data.release()
            del self._data
        if hasattr(self, "_w"):
            del self._w
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- the internal lock ----------------------------------------------------

    def _alive(self, sid: int) -> bool:
        return sid == self.slot or C.ofd_is_locked(self._fd, _slot_offset(sid))

    def _rollback(self) -> None:
        if self._ld(JOURNAL) == 0:
            return
        self._st(HEAD, self._ld(JHEAD))
        self._st(TAIL, self._ld(JTAIL))
        self._st(USED, self._ld(JUSED))
        self._st(COUNT, self._ld(JCOUNT))
        self._st(JOURNAL, 0)

    def _lock(self) -> None:
        """CAS 0 -> our slot id; spin, yield, then sleep 1 ms at a time on the lock
        word (counted in lock waiters). A holder whose slot nobody holds is dead:
        take the lock from it and roll its change back."""
        la = self._a(LOCK)
        i = 0
        while True:
            cur = C.cas32_found(la, 0, self.slot)
            if cur == 0:
                return
            if i % 8 == 7 and (not 1 <= cur <= SLOT_COUNT or not self._alive(cur)):
                if C.cas32(la, cur, self.slot):
                    self._rollback()
                    return
            if i < 16:
                pass
            elif i < 64:
                os.sched_yield()
            else:
                C.add32(self._a(LOCK_WAITERS), 1)
                C.futex_wait(la, cur, 0.001)
                C.add32(self._a(LOCK_WAITERS), -1)
            i += 1

    def _unlock(self) -> None:
        C.store32(self._a(LOCK), 0)
        if self._ld(LOCK_WAITERS) > 0:
            C.futex_wake(self._a(LOCK), 1)

    def _state(self) -> tuple:
        head, tail, used, count = self._ld(HEAD), self._ld(TAIL), self._ld(USED), self._ld(COUNT)
        cap = self.cap
        if (not 0 <= head < cap or head & 7 or not 0 <= tail < cap or tail & 7 or not 0 <= used <= cap
                or count < 0 or count > used // 8):
            return None
        return head, tail, used, count

    def _corrupt(self, why: str) -> IPCError:
        return ipc_error(_errno.EPROTO, "ring", self.name, f"the queue segment is corrupt ({why}); a peer broke the protocol")

    def _begin(self, head: int, tail: int, used: int, count: int) -> None:
        self._st(JHEAD, head)
        self._st(JTAIL, tail)
        self._st(JUSED, used)
        self._st(JCOUNT, count)
        self._st(JOURNAL, 1)

    def _place(self, head: int, tail: int, used: int, count: int, need: int) -> int:
        """Where a record of ``need`` bytes goes: its offset, or -1 (no room);
        -2 - offset 0 marks a wrap."""
        cap = self.cap
        if self.maxsize > 0 and count >= self.maxsize:
            return -1
        if used == 0:
            return 0 if need <= cap else -1
        if tail > head:
            if need <= cap - tail:
                return tail
            if need <= head:
                return -2
            return -1
        return tail if need <= head - tail else -1

    # -- put / get ----------------------------------------------------------------

    def check_open(self, syscall: str) -> None:
        if self._closed:
            raise closed_error("queue", syscall, self.name)

    def try_put(self, data: bytes) -> bool:
        """Puts one record: True, or False when there is no room now."""
        n = len(data)
        if n > self.cap - RECORD_HEADER:
            raise ipc_error(_errno.EMSGSIZE, "ring_put", self.name,
                            f"an item of {n} bytes is larger than this queue's largest ({self.cap - RECORD_HEADER}: "
                            f"its capacity minus an 8-byte record header)")
        need = RECORD_HEADER + align8(n)
        with self._mu:
            self.check_open("ring_put")
            self._lock()
            try:
                s = self._state()
                if s is None:
                    raise self._corrupt("head, tail, used or count out of range")
                head, tail, used, count = s
                pos = self._place(head, tail, used, count, need)
                if pos == -1:
                    return False
                wrap = pos == -2
                if wrap:
                    pos = 0
                d = self._data
                d[pos + 8:pos + 8 + n] = data
                d[pos:pos + 8] = struct.pack("<II", n, 0)
                self._begin(head, tail, used, count)
                if used == 0:
                    self._st(HEAD, 0)
                elif wrap:
                    d[tail:tail + 4] = b"\xff\xff\xff\xff"
                    used += self.cap - tail
                nxt = pos + need
                self._st(TAIL, 0 if nxt == self.cap else nxt)
                self._st(USED, used + need)
                self._st(COUNT, count + 1)
                self._st(JOURNAL, 0)  # the commit
                C.add32(self._a(PUT_SEQ), 1)
            finally:
                self._unlock()
            if self._ld(GET_WAITERS) > 0:
                C.futex_wake(self._a(PUT_SEQ), 1)
            return True

    def try_get(self) -> Optional[bytes]:
        """Takes the oldest record's bytes, or None when the queue is empty."""
        with self._mu:
            self.check_open("ring_get")
            self._lock()
            try:
                s = self._state()
                if s is None:
                    raise self._corrupt("head, tail, used or count out of range")
                head, tail, used, count = s
                if count == 0:
                    return None
                d = self._data
                cap = self.cap
                off = head
                skipped = 0
                n = _REC.unpack_from(d, off)[0]
                if n == WRAP:
                    skipped = cap - head
                    off = 0
                    n = _REC.unpack_from(d, 0)[0]
                need = RECORD_HEADER + align8(n) if n <= cap else cap + 1
                if n > cap - RECORD_HEADER or need > cap - off or need + skipped > used:
                    raise self._corrupt(f"a record of {n} bytes at ring offset {off} runs past the ring or the used bytes")
                item = bytes(d[off + 8:off + 8 + n])
                self._begin(head, tail, used, count)
                count -= 1
                if count == 0:
                    self._st(HEAD, 0)
                    self._st(TAIL, 0)
                    self._st(USED, 0)
                else:
                    nxt = off + need
                    self._st(HEAD, 0 if nxt == cap else nxt)
                    self._st(USED, used - skipped - need)
                self._st(COUNT, count)
                self._st(JOURNAL, 0)  # the commit
                C.add32(self._a(GET_SEQ), 1)
            finally:
                self._unlock()
            if self._ld(PUT_WAITERS) > 0:
                C.futex_wake(self._a(GET_SEQ), 1)
            return item

    def _fits(self, n: int) -> bool:
        """Whether a record of ``n`` bytes would fit now (read without the lock)."""
        s = self._state()
        return s is None or self._place(*s, RECORD_HEADER + align8(n)) != -1

    def wait(self, readable: bool, n: int, deadline: Optional[float]) -> bool:
        """Sleeps until the other side moves (or CHECK_S, or the deadline, pass):
        counted in the waiter word and our slot's share before reading the
        sequence word, so the other side wakes exactly one sleeper and skips
        FUTEX_WAKE when nobody sleeps. False when the deadline has passed."""
        seq, waiters, share = (PUT_SEQ, GET_WAITERS, S_GET_WAITING) if readable else (GET_SEQ, PUT_WAITERS, S_PUT_WAITING)
        with self._mu:
            self.check_open("futex")
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            share_addr = self._a(_slot_offset(self.slot) + share)
            C.add32(self._a(waiters), 1)
            C.add32(share_addr, 1)
            s = self._ld(seq)
            self._sleepers += 1
        try:
            ready = self._ld(COUNT) > 0 if readable else self._fits(n)
            if not ready:
                t = CHECK_S if deadline is None else min(CHECK_S, max(deadline - now, 0.0))
                C.futex_wait(self._a(seq), s, t)
        finally:
            with self._mu:
                C.add32(share_addr, -1)
                C.add32(self._a(waiters), -1)
                self._sleepers -= 1
                if self._sleepers == 0 and self._closed:
                    self._unmap()
        return True

    # -- state -----------------------------------------------------------------

    def count(self) -> int:
        with self._mu:
            self.check_open("ring_size")
            return max(self._ld(COUNT), 0)

    def full(self) -> bool:
        with self._mu:
            self.check_open("ring_size")
            return not self._fits(0)

    def close(self) -> None:
        """Gives the slot up and closes; a thread still sleeping unmaps when it is out."""
        with self._mu:
            if self._closed:
                return
            self._closed = True
            if self._mm is None:
                return
            self._st(_slot_offset(self.slot) + S_PID, 0)
            if self._sleepers > 0:
                C.futex_wake(self._a(PUT_SEQ))
                C.futex_wake(self._a(GET_SEQ))
            else:
                self._unmap()


def unlink(name: str) -> None:
    """Removes the segment's name (IPCError ENOENT if there is none)."""
    try:
        os.unlink(path_of(name))
    except OSError as e:
        raise ipc_error(e.errno or _errno.EIO, "unlink", name) from None
