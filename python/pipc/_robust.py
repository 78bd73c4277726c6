"""The crash-safe semaphore segment (``/dev/shm/pipc.NAME.sem``), speaking
the protocol of native/sync/robust.cc word for word (docs/api.md,
"Crash-safe semaphores: layout and protocol").

Every change is made under the segment's internal lock word with an undo
journal in our slot; our slot is ours while our descriptor holds an
open-file-description lock on its first byte, which the kernel drops when the
process dies by any means, so a Python holder killed by SIGKILL is recovered
by Node (or Python) waiters and the reverse.
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
from typing import NamedTuple, Optional

from . import _libc as C
from ._errors import IPCError, closed_error, ipc_error

# Header words (int32 indices).
MAGIC, VERSION, KIND, MAX, SLOTS, SLOTBASE, LOCK, VALUE, SEQ, WAITERS = range(10)
TOKLO, TOKHI, RECOVERED, DEADPID, DEADAT, INITIAL = 10, 11, 12, 13, 14, 16
# Slot record words.
S_PID, S_HELD, S_GOTREC, S_JOURNAL, S_ENTRIES = 0, 1, 2, 3, 4
S_TOKLO, S_TOKHI, S_RECPID, S_RECAT = 16, 17, 18, 20

MAGIC_VALUE = 0x43504950
LAYOUT_VERSION = 1
KIND_SEMAPHORE = 1
MAX_ENTRIES = 6
HEADER_BYTES = 256
SLOT_BYTES = 128
SLOT_COUNT = 512
SEGMENT_BYTES = HEADER_BYTES + SLOT_BYTES * SLOT_COUNT  # 65,792
TOTAL_WORDS = SEGMENT_BYTES // 4
SLOT_WORDS = SLOT_BYTES // 4
CHECK_S = 0.25  # liveness check period of a waiter

NONE, TAKEN, TAKEN_RECOVERED, OVER_RELEASE = 0, 1, 2, -1

_Words = ctypes.c_int32 * TOTAL_WORDS
_TSO = platform.machine() in ("x86_64", "AMD64", "i386", "i686")


class OwnerDead(NamedTuple):
    """Who held a unit that came back because its holder died."""

    pid: int
    """The dead holder's process id."""
    at: float
    """When its death was noticed, in milliseconds since the epoch (as JavaScript's Date.now())."""


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _slot_offset(slot: int) -> int:
    return HEADER_BYTES + SLOT_BYTES * (slot - 1)


def _slot_word(slot: int) -> int:
    return _slot_offset(slot) // 4


def _now_ms() -> float:
    return time.time() * 1e3


def _create_and_link(path: str, mode: int, initial: int, max_: int) -> int:
    """Creates the segment fully initialised under no name, then links it into
    place: an opener sees either no file or a complete header. Returns the fd."""
    fd = os.open("/dev/shm", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, mode)
    try:
        os.ftruncate(fd, SEGMENT_BYTES)
        with mmap.mmap(fd, SEGMENT_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mm:
            struct.pack_into("<6i", mm, 4, LAYOUT_VERSION, KIND_SEMAPHORE, max_, SLOT_COUNT, HEADER_BYTES, 0)
            struct.pack_into("<i", mm, VALUE * 4, initial)
            struct.pack_into("<i", mm, INITIAL * 4, initial)
            struct.pack_into("<i", mm, MAGIC * 4, MAGIC_VALUE)  # last
        C.link_fd(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


class CrashSafeWords:
    """What every segment of the crash-safe geometry (semaphores, Web Locks)
    does the same way: word access, slot liveness (the OFD lock), the undo
    journal in our slot, and the internal lock in header word LOCK. A
    subclass sets ``_w``, ``_base``, ``_fd``, ``_mm``, ``slot`` and ``_rec``,
    and defines ``_recover_slot(sid)`` (what a dead slot's holdings mean for
    its kind; a nonzero result moved ``seq`` on)."""

    _w: "ctypes.Array[ctypes.c_int32]"
    _base: int
    _fd: int
    _mm: Optional[mmap.mmap]
    slot: int
    _rec: int
    _LOCK_SLEEP_S = 0.0002
    """How long a contender sleeps on the internal lock word at a time (the
    unlocking store wakes nobody)."""

    def _addr(self, word: int) -> int:
        return self._base + 4 * word

    # On x86 (total store order) an aligned 32-bit store or load through the
    # mapping is already atomic and ordered with the others, as the Node side's
    # fast path relies on; elsewhere they go through libatomic (seq_cst).
    if _TSO:
        def _st(self, word: int, value: int) -> None:
            self._w[word] = value

        def _ld(self, word: int) -> int:
            return self._w[word]  # type: ignore[no-any-return]
    else:  # pragma: no cover - not x86
        def _st(self, word: int, value: int) -> None:
            C.store32(self._addr(word), value)

        def _ld(self, word: int) -> int:
            return C.load32(self._addr(word))

    def _recover_slot(self, sid: int) -> int:
        raise NotImplementedError

    def _alive(self, sid: int) -> bool:
        """False only when slot ``sid``'s owner is gone (the kernel dropped its lock)."""
        if sid == self.slot:
            return True
        return C.ofd_is_locked(self._fd, _slot_offset(sid))

    def _tx(self, words: list) -> None:
        """Journals the old values of ``words`` in our slot, then the count."""
        w = self._w
        e = self._rec + S_ENTRIES
        for i, word in enumerate(words):
            w[e + 2 * i] = word
            w[e + 2 * i + 1] = w[word]
        self._st(self._rec + S_JOURNAL, len(words))

    def _end(self) -> None:
        self._st(self._rec + S_JOURNAL, 0)

    def _rollback(self, sid: int) -> None:
        w = self._w
        rec = _slot_word(sid)
        n = self._ld(rec + S_JOURNAL)
        if n <= 0:
            return
        n = min(n, MAX_ENTRIES)
        for i in range(n - 1, -1, -1):
            word = w[rec + S_ENTRIES + 2 * i]
            if 0 <= word < TOTAL_WORDS:
                self._st(word, w[rec + S_ENTRIES + 2 * i + 1])
        self._st(rec + S_JOURNAL, 0)

    def _unlock(self) -> None:
        self._st(LOCK, 0)

    def _lock_internal(self) -> None:
        """Takes the internal lock: spin, then yield, then sleep a little at a
        time; an owner whose slot is dead is taken over and its half-done
        operation undone."""
        la = self._addr(LOCK)
        i = 0
        while True:
            cur = C.cas32_found(la, 0, self.slot)
            if cur == 0:
                return
            if i < 16:
                i += 1
                continue
            if i % 8 == 0 and (not 1 <= cur <= SLOT_COUNT or not self._alive(cur)):
                if C.cas32(la, cur, self.slot):
                    if 1 <= cur <= SLOT_COUNT and self._recover_slot(cur) > 0:
                        C.futex_wake(self._addr(SEQ))
                    return
            elif i < 256:
                os.sched_yield()
            else:
                C.futex_wait(la, cur, self._LOCK_SLEEP_S)
            i += 1

    def _unmap(self) -> None:
        if hasattr(self, "_w"):
            del self._w
        mm = getattr(self, "_mm", None)
        if mm is not None:
            mm.close()
            self._mm = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class RobustSegment(CrashSafeWords):
    """One open crash-safe semaphore segment and the slot this handle owns.

    Operations of one handle are serialised by a thread lock (as the native
    ``Seg::mu``); a waiter sleeps on the futex word without it.
    """

    def __init__(self, name: str, path: str, create: bool, exclusive: bool, mode: int,
                 initial: int, max_: int, owner: Optional[C.Owner] = None) -> None:
        self.name = name
        self.created = False
        self._mu = threading.Lock()
        self._sleepers = 0
        self._closed = False
        self._next_check = 0.0
        fd = -1
        syscall = "open"
        try:
            fd, self.created = C.open_or_create(path, name, create, exclusive, lambda: _create_and_link(path, mode, initial, max_))
            syscall = "fstat"
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != SEGMENT_BYTES:
                raise ipc_error(_errno.EINVAL, "fstat", name, "not a crash-safe semaphore segment (type or size)")
            if owner is not None and not self.created:
                C.check_owner(st, owner, "fstat", name)
            syscall = "mmap"
            self._mm = mmap.mmap(fd, SEGMENT_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except IPCError:
            if fd >= 0:
                os.close(fd)
            raise
        except OSError as e:
            if fd >= 0:
                os.close(fd)
            raise ipc_error(e.errno or _errno.EIO, syscall, name) from None
        self._fd = fd
        self._w = _Words.from_buffer(self._mm)
        self._base = ctypes.addressof(self._w)
        h = struct.unpack_from("<6i", self._mm, 0)
        if (C.load32(self._base) != MAGIC_VALUE or h[VERSION] != LAYOUT_VERSION or h[KIND] != KIND_SEMAPHORE
                or h[SLOTS] != SLOT_COUNT or h[SLOTBASE] != HEADER_BYTES):
            self._unmap()
            raise ipc_error(_errno.EINVAL, "mmap", name, "not a crash-safe semaphore segment (header)")
        self.slot = 0
        start = os.getpid() % SLOT_COUNT
        try:
            for i in range(SLOT_COUNT):
                sid = 1 + (start + i) % SLOT_COUNT
                if C.ofd_trylock(fd, _slot_offset(sid)):
                    self.slot = sid
                    break
        except OSError as e:
            self._unmap()
            raise ipc_error(e.errno or _errno.EIO, "fcntl", name) from None
        if self.slot == 0:
            self._unmap()
            raise ipc_error(_errno.ENOSPC, "fcntl", name, "all 512 slots of this semaphore are in use")
        self._rec = _slot_word(self.slot)
        w = self._w
        self.max = w[MAX]
        self.limit = self.max if self.max > 0 else C.SEM_VALUE_MAX
        # Whatever a dead previous owner of this slot left is undone or given
        # back, also if it died holding the internal lock (which then holds our id).
        if not C.cas32(self._addr(LOCK), self.slot, self.slot):
            self._lock_internal()
        n = self._recover_slot(self.slot)
        w[self._rec + S_PID] = os.getpid()
        w[self._rec + S_GOTREC] = 0
        self._unlock()
        if n > 0:
            C.futex_wake(self._addr(SEQ))

    def _recover_slot(self, sid: int) -> int:
        """Under the internal lock: undoes slot ``sid``'s half-done operation and
        returns the units it held, marked recovered. Returns how many came back."""
        self._rollback(sid)
        w = self._w
        rec = _slot_word(sid)
        held = w[rec + S_HELD]
        added = 0
        if held > 0:
            v = w[VALUE]
            nv = v + held
            if w[MAX] > 0 and nv > w[MAX]:
                nv = w[MAX]
            nv = min(nv, C.SEM_VALUE_MAX)
            added = nv - v
            self._tx([VALUE, RECOVERED, DEADPID, rec + S_HELD])
            w[VALUE] = nv
            w[RECOVERED] = min(w[RECOVERED] + added, nv)
            w[DEADPID] = w[rec + S_PID]
            struct.pack_into("<d", self._mm, DEADAT * 4, _now_ms())
            w[rec + S_HELD] = 0
            self._end()
            C.add32(self._addr(SEQ), 1)
        if sid != self.slot:
            w[rec + S_PID] = 0
        return added

    def _acquire_locked(self) -> int:
        w = self._w
        v = w[VALUE]
        if v <= 0:
            return NONE
        rec = self._rec
        recovered = w[RECOVERED] > 0
        words = [VALUE, rec + S_HELD, TOKLO, TOKHI]
        if recovered:
            words.append(RECOVERED)
        self._tx(words)
        w[VALUE] = v - 1
        w[rec + S_HELD] = w[rec + S_HELD] + 1
        lo = (w[TOKLO] + 1) & 0xFFFFFFFF
        w[TOKLO] = _i32(lo)
        if lo == 0:
            w[TOKHI] = _i32(w[TOKHI] + 1)
        if recovered:
            w[RECOVERED] = w[RECOVERED] - 1
        self._end()
        w[rec + S_TOKLO] = w[TOKLO]
        w[rec + S_TOKHI] = w[TOKHI]
        w[rec + S_GOTREC] = 1 if recovered else 0
        if recovered:
            w[rec + S_RECPID] = w[DEADPID]
            w[rec + S_RECAT] = w[DEADAT]
            w[rec + S_RECAT + 1] = w[DEADAT + 1]
        return TAKEN_RECOVERED if recovered else TAKEN

    def _recover_dead_locked(self) -> int:
        w = self._w
        n = 0
        first = HEADER_BYTES // 4
        slots = min(w[SLOTS], SLOT_COUNT)
        journals = w[first + S_JOURNAL:first + S_JOURNAL + SLOT_WORDS * slots:SLOT_WORDS]
        busy = {sid for sid, h in self._holders() if h != 0}
        busy.update(i + 1 for i, j in enumerate(journals) if j != 0)
        for sid in sorted(busy):
            if sid == self.slot:
                continue
            if not self._alive(sid):
                n += self._recover_slot(sid)
        return n

    def _release_locked(self, n: int) -> int:
        w = self._w
        nv = w[VALUE] + n
        if w[MAX] > 0 and nv > w[MAX]:
            return OVER_RELEASE
        if nv > C.SEM_VALUE_MAX:
            return -_errno.EOVERFLOW
        rec = self._rec
        mine = min(w[rec + S_HELD], n)
        rest = n - mine
        # Units released by a process that did not take them stop counting as
        # held by whoever took them (as with a POSIX semaphore, anyone may release).
        take = []
        if rest > 0:
            for sid, h in self._holders():
                if rest <= 0 or len(take) >= MAX_ENTRIES - 2:
                    break
                if sid == self.slot or h <= 0:
                    continue
                t = min(h, rest)
                take.append((sid, t))
                rest -= t
        self._tx([VALUE, rec + S_HELD] + [_slot_word(sid) + S_HELD for sid, _ in take])
        w[VALUE] = nv
        w[rec + S_HELD] = w[rec + S_HELD] - mine
        for sid, t in take:
            w[_slot_word(sid) + S_HELD] = w[_slot_word(sid) + S_HELD] - t
        self._end()
        C.add32(self._addr(SEQ), 1)
        return 0

    def _holders(self) -> "list[tuple[int, int]]":
        """(slot, held) of every slot holding units, in slot order (one C-level
        slice of the mapping, not 512 Python reads)."""
        w = self._w
        first = HEADER_BYTES // 4 + S_HELD
        helds = w[first:first + SLOT_WORDS * min(w[SLOTS], SLOT_COUNT):SLOT_WORDS]
        return [(i + 1, h) for i, h in enumerate(helds) if h != 0]

    def _wake(self) -> None:
        if self._ld(WAITERS) > 0:
            C.add32(self._addr(SEQ), 1)
            C.futex_wake(self._addr(SEQ))

    def _try_acquire_mu(self, check_dead: bool) -> int:
        self._lock_internal()
        r = self._acquire_locked()
        recovered = 0
        if r == NONE and check_dead:
            recovered = self._recover_dead_locked()
            if recovered > 0:
                r = self._acquire_locked()
        self._unlock()
        if recovered > 1:
            C.futex_wake(self._addr(SEQ))
        return r

    def _check_open(self, syscall: str) -> None:
        if self._closed:
            raise closed_error("semaphore", syscall, self.name)

    # -- operations ----------------------------------------------------------

    @property
    def value(self) -> int:
        """Free units."""
        with self._mu:
            self._check_open("sem_getvalue")
            return self._ld(VALUE)

    @property
    def initial(self) -> int:
        """The creator's initial value."""
        with self._mu:
            self._check_open("sem_getvalue")
            return self._w[INITIAL]

    def try_acquire(self) -> int:
        """NONE, TAKEN or TAKEN_RECOVERED; checks for dead holders at most every 250 ms."""
        with self._mu:
            self._check_open("sem_trywait")
            now = time.monotonic()
            check = now >= self._next_check
            if check:
                self._next_check = now + CHECK_S
            return self._try_acquire_mu(check)

    def release(self, n: int) -> int:
        """0 done, OVER_RELEASE (nothing changed); IPCError EOVERFLOW past SEM_VALUE_MAX."""
        with self._mu:
            self._check_open("sem_post")
            self._lock_internal()
            r = self._release_locked(n)
            self._unlock()
            if r == 0:
                self._wake()
        if r < 0 and r != OVER_RELEASE:
            raise ipc_error(-r, "sem_post", self.name)
        return r

    def spin(self, seconds: float) -> int:
        """Watches the value word for up to ``seconds`` and tries when a unit is
        there: TAKEN, TAKEN_RECOVERED or NONE (also when closed meanwhile). It
        counts as a sleeper, so a close() from another thread leaves the
        unmapping to it, as to a thread in wait()."""
        with self._mu:
            self._check_open("sem_trywait")
            self._sleepers += 1
            w = self._w
        try:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end and not self._closed:
                if w[VALUE] > 0:
                    r = self.try_acquire()
                    if r != NONE:
                        return r
            return NONE
        finally:
            del w
            with self._mu:
                self._sleepers -= 1
                if self._sleepers == 0 and self._closed:
                    self._unmap()

    def wait(self, deadline: Optional[float]) -> int:
        """Waits for a unit until ``deadline`` (time.monotonic(), None: forever):
        TAKEN, TAKEN_RECOVERED, or NONE when the deadline passed."""
        while True:
            with self._mu:
                self._check_open("futex")
                C.add32(self._addr(WAITERS), 1)
                seq = self._ld(SEQ)
                now = time.monotonic()
                check = now >= self._next_check
                if check:
                    self._next_check = now + CHECK_S
                r = self._try_acquire_mu(check)
                if r != NONE:
                    C.add32(self._addr(WAITERS), -1)
                    return r
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    C.add32(self._addr(WAITERS), -1)
                    return NONE
                end = self._next_check if deadline is None else min(self._next_check, deadline)
                self._sleepers += 1
                seq_addr = self._addr(SEQ)
            try:
                C.futex_wait(seq_addr, seq, max(end - now, 0.0))
            finally:
                with self._mu:
                    C.add32(self._addr(WAITERS), -1)
                    self._sleepers -= 1
                    if self._sleepers == 0 and self._closed:
                        self._unmap()
                        raise closed_error("semaphore", "futex", self.name)

    def took_recovered(self) -> Optional[OwnerDead]:
        """If our last acquire got a unit whose holder died: who it was (consumes the mark)."""
        with self._mu:
            if self._closed:
                return None
            w = self._w
            if w[self._rec + S_GOTREC] == 0:
                return None
            w[self._rec + S_GOTREC] = 0
            at = struct.unpack_from("<d", self._mm, (self._rec + S_RECAT) * 4)[0]
            return OwnerDead(w[self._rec + S_RECPID], at)

    def holder_token(self) -> int:
        """The 64-bit acquire counter (the fencing token of a Lock's holder)."""
        with self._mu:
            self._check_open("sem_getvalue")
            return (C.atomic_load(self._addr(TOKHI), 4) << 32) | C.atomic_load(self._addr(TOKLO), 4)

    def held(self) -> int:
        """Units our slot holds."""
        with self._mu:
            return 0 if self._closed else self._w[self._rec + S_HELD]

    def close(self) -> None:
        """Gives the slot up (what it holds goes back, marked recovered), closes
        the descriptor, and unmaps (or leaves that to the last sleeping thread)."""
        with self._mu:
            if self._closed:
                return
            self._closed = True
            self._lock_internal()
            n = self._recover_slot(self.slot)
            self._w[self._rec + S_PID] = 0
            self._unlock()
            if n > 0:
                C.futex_wake(self._addr(SEQ))
            os.close(self._fd)
            self._fd = -1
            if self._sleepers > 0:
                C.futex_wake(self._addr(SEQ))
            else:
                self._unmap()
